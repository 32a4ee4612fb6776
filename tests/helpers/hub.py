"""An offline Hub: `HfApi.create_repo` / `create_commit` act on a local folder (huggingface_hub 2.x talks through
httpx, which `responses` and `requests_mock` do not intercept)."""

from pathlib import Path

import pytest
from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, RepoUrl


class FakeHub:
    """Stands in for the Hub: `HfApi.create_repo` / `create_commit` are patched to act on `root / repo_id`."""

    def __init__(self, root: Path):
        self.root = root
        self.repos, self.commits = [], []

    def folder(self, repo_id: str) -> Path:
        return self.root / repo_id

    def create_repo(self, api, repo_id, *, token=None, private=None, repo_type=None, exist_ok=False, **kwargs):
        if self.folder(repo_id).exists() and not exist_ok:
            raise FileExistsError(repo_id)
        self.folder(repo_id).mkdir(parents=True, exist_ok=True)
        self.repos.append({"repo_id": repo_id, "private": private, "repo_type": repo_type, "exist_ok": exist_ok})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, api, repo_id, operations, *, commit_message, commit_description=None, **kwargs):
        folder = self.folder(repo_id)
        assert folder.is_dir(), "create_commit before create_repo"
        paths = []
        for operation in operations:
            target = folder / operation.path_in_repo
            if isinstance(operation, CommitOperationAdd):
                target.parent.mkdir(parents=True, exist_ok=True)
                with operation.as_file() as source:
                    target.write_bytes(source.read())
            elif isinstance(operation, CommitOperationDelete):
                target.unlink()
            paths.append(operation.path_in_repo)
        self.commits.append({"repo_id": repo_id, "message": commit_message, "paths": paths, **kwargs})
        oid = f"{len(self.commits):040x}"
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{oid}", commit_message=commit_message,
                          commit_description=commit_description or "", oid=oid)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *a, **kw: hub.create_repo(api, *a, **kw))
    monkeypatch.setattr(HfApi, "create_commit", lambda api, *a, **kw: hub.create_commit(api, *a, **kw))
    return hub
