"""Remote-code entry points take the keywords transformers' loaders pass them, by rule rather than by a list, and
still name a user's misspelt option (transformers 5.25's AutoModel added `_from_auto`; a listed set broke)."""

import pytest
from transformers import pipeline

from kemd_emotion.configuration_klue_wav2vec2 import (
    check_loading_keywords,
    is_private_keyword,
    transformers_loading_keywords,
)
from kemd_emotion.processing_klue_wav2vec2 import UnknownArgumentError

PLUMBING = {
    "_from_auto": True, "_from_pipeline": "emotion-multimodal", "_commit_hash": None, "_a_future_internal": 1,
    "trust_remote_code": True, "code_revision": None, "adapter_kwargs": {}, "revision": "main", "token": None,
    "cache_dir": None, "force_download": False, "local_files_only": True, "proxies": None, "subfolder": "",
}


def test_loading_keywords_come_from_the_installed_transformers_signatures():
    keywords = transformers_loading_keywords()
    for public in ("revision", "token", "cache_dir", "force_download", "local_files_only", "proxies", "subfolder",
                   "trust_remote_code", "code_revision", "adapter_kwargs", "config"):
        assert public in keywords, public
    assert "pretrained_model_name_or_path" not in keywords and "self" not in keywords and "cls" not in keywords
    assert all(not name.startswith("_") for name in keywords)  # private ones pass by convention, not by listing


@pytest.mark.parametrize("name,private", [("_from_auto", True), ("_whatever_comes_next", True), ("revision", False)])
def test_private_keywords_are_recognised_by_their_leading_underscore(name, private):
    assert is_private_keyword(name) is private


def test_transformers_plumbing_passes_and_own_options_pass():
    check_loading_keywords("Loader.from_pretrained", {**PLUMBING, "provider": "CPUExecutionProvider"}, own=("provider",))


def test_a_misspelt_option_is_named_with_a_near_spelling_and_the_options():
    with pytest.raises(TypeError) as raised:
        check_loading_keywords("Loader.from_pretrained", {**PLUMBING, "provder": 1, "zzz": 2}, own=("provider", "dtype"))
    assert str(raised.value) == (
        "Loader.from_pretrained got unexpected keyword(s) 'provder' (did you mean 'provider'?), 'zzz'; it takes "
        "provider, dtype and transformers' loading keywords (revision, token, cache_dir, local_files_only, ...)."
    )


def test_pipeline_ignores_private_keywords_and_names_a_misspelt_option(tiny_model_factory, tiny_processor):
    classifier = pipeline("emotion-multimodal", model=tiny_model_factory("text", seed=0), processor=tiny_processor,
                          device="cpu", _a_future_internal=1)
    assert classifier({"text": "정말 좋네요"}, _another_internal=True)["emotions"]
    with pytest.raises(UnknownArgumentError, match="unexpected argument\\(s\\) thresold; it accepts top_k"):
        classifier("정말 좋네요", thresold=0.5, _another_internal=True)
