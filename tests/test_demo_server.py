"""The running demo (`kemd-emotion demo`, a real server on 127.0.0.1) through its HTTP API and in a real browser.

The API tests need Gradio (the `demo` extra); the browser tests also need selenium (the `test` extra) and Debian's
`chromium` and `chromium-driver` (`.ci/run` installs them). Without them the tests are skipped, saying why; with
KEMD_REQUIRE_BROWSER=1 (set by .ci/run) a missing piece fails instead. KEMD_DEMO_TEST_MODEL=DIR runs them on
another checkpoint (e.g. the one `make run` trains) instead of a tiny random one.

Screenshots are kept in test-artifacts/browser/ at the repository root (the path is printed).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers.audio import speech_like
from transformers import pipeline

from kemd_emotion.data.sample import synthesize_utterance
from kemd_emotion.demo import decision_thresholds
from kemd_emotion.hub import save_checkpoint
from kemd_emotion.small_encoders import tiny_processor

gradio = pytest.importorskip("gradio", reason="the demo needs Gradio: pip install 'kemd-emotion[demo]'")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-proxy-server", "--window-size=1400,1800")
SERVER_START_TIMEOUT = 240
RESULT_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_factory):
    """KEMD_DEMO_TEST_MODEL, or a tiny model saved as the training script saves one (2 s audio crop, as `make run`)."""
    if os.environ.get("KEMD_DEMO_TEST_MODEL"):
        return Path(os.environ["KEMD_DEMO_TEST_MODEL"])
    processor = tiny_processor(vocab_size=300, max_audio_seconds=2.0)
    return save_checkpoint(tiny_model_factory("add", seed=7), processor, tmp_path_factory.mktemp("demo_checkpoint"))


@pytest.fixture(scope="module")
def classifier(checkpoint):
    import kemd_emotion  # noqa: F401  registers the task

    return pipeline("emotion-multimodal", model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    """`kemd-emotion demo --model CHECKPOINT --port P` in its own process; yields its URL and stops it after."""
    work = tmp_path_factory.mktemp("demo_server")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(work / "gradio"),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "TOKENIZERS_PARALLELISM": "false"}
    log = open(work / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "kemd_emotion.cli", "demo", "--model", str(checkpoint), "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
    )
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the demo exited with {process.returncode}:\n{(work / 'server.log').read_text()[-3000:]}")
            try:
                if opener.open(url, timeout=5).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not answer within {SERVER_START_TIMEOUT} s:\n"
                            f"{(work / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    server_log = (work / "server.log").read_text()
    assert "Traceback" not in server_log, server_log[-3000:]  # every error was handled, none escaped


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False, analytics_enabled=False, download_files=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_files")
    rng = np.random.default_rng(5)
    paths = {name: folder / f"{name}.wav" for name in ("short", "long", "silence", "ten_minutes", "rate_8k")}
    soundfile.write(paths["short"], speech_like(rng, 1.4), 16000)
    soundfile.write(paths["long"], speech_like(rng, 7.0), 16000)
    soundfile.write(paths["rate_8k"], speech_like(rng, 1.2, 8000), 8000)
    soundfile.write(paths["silence"], np.zeros(30 * 16000, dtype=np.int16), 16000)
    soundfile.write(paths["ten_minutes"], np.tile(speech_like(rng, 6.0, 8000), 100), 8000, subtype="PCM_16")
    paths["not_audio"] = folder / "not_audio.wav"
    paths["not_audio"].write_bytes(b"this is plain text, not a recording\n" * 40)
    paths["text_file"] = folder / "notes.txt"
    paths["text_file"].write_text("not audio either")
    return paths


def pipeline_output(result: tuple) -> dict:
    """The pipeline's JSON (the last output of the /analyse endpoint)."""
    return result[-1]


def assert_matches(shown: dict, want: dict, atol: float = 1e-5) -> None:
    assert [e["label"] for e in shown["emotions"]] == [e["label"] for e in want["emotions"]]
    assert shown["labels"] == want["labels"]
    np.testing.assert_allclose([e["score"] for e in shown["emotions"]], [e["score"] for e in want["emotions"]],
                               atol=atol)
    np.testing.assert_allclose([shown["arousal"], shown["valence"]], [want["arousal"], want["valence"]], atol=atol)


# ---------------------------------------------------------------------------------------------------- HTTP API
def test_api_answers_with_the_pipelines_output(client, classifier, files):
    from gradio_client import handle_file

    crop = classifier.processor.max_audio_seconds
    result = client.predict(handle_file(str(files["short"])), TEXT, False, api_name="/analyse")
    assert_matches(pipeline_output(result), classifier({"text": TEXT, "audio": str(files["short"])}))
    status, table = result[0], result[1]
    assert status.startswith("### Predicted: ") and "Scored the whole 1.4 s recording." in status
    assert [row[0] for row in table["data"]] == [e["label"] for e in pipeline_output(result)["emotions"]]
    assert result[4]["visible"] is False  # no timeline for a recording within the crop

    result = client.predict(handle_file(str(files["long"])), TEXT, False, api_name="/analyse")
    want = classifier({"text": TEXT, "audio": str(files["long"])}, chunk_length_s=crop)
    assert_matches(pipeline_output(result), want)
    assert len(pipeline_output(result)["chunks"]) == len(want["chunks"]) > 1
    assert result[4]["visible"] is True and result[4]["value"]["type"] == "matplotlib"

    result = client.predict(handle_file(str(files["rate_8k"])), TEXT, False, api_name="/analyse")
    assert_matches(pipeline_output(result), classifier({"text": TEXT, "audio": str(files["rate_8k"])}))


def test_api_cut_at_utterances_answers_with_the_utterance_timeline(client, classifier, files, tmp_path):
    from gradio_client import handle_file

    rng = np.random.default_rng(10)
    pause = lambda: 0.001 * rng.standard_normal(12800)  # noqa: E731
    talk = tmp_path / "talk.wav"  # two utterances with pauses around them
    soundfile.write(talk, np.concatenate([pause(), synthesize_utterance("sad", 1.5, seed=3)[1], pause(),
                                          synthesize_utterance("happy", 1.5, seed=4)[1], pause()]), 16000)
    result = client.predict(handle_file(str(talk)), TEXT, True, api_name="/analyse")
    want = classifier({"text": TEXT, "audio": str(talk)}, segment="utterances")
    shown = pipeline_output(result)
    assert_matches(shown, want)
    assert shown["segmentation"] == "energy" and len(shown["utterances"]) == len(want["utterances"]) == 2
    assert "utterance(s) found and scored one by one" in result[0]
    assert result[4]["visible"] is True and result[4]["value"]["type"] == "matplotlib"
    rows = result[5]["value"]["data"]  # start, end, labels, arousal, valence, transcript per utterance
    assert result[5]["visible"] is True and len(rows) == len(want["utterances"])
    for row, utterance in zip(rows, want["utterances"]):
        assert row == [f"{utterance['start']:.2f}", f"{utterance['end']:.2f}", ", ".join(utterance["labels"]),
                       f"{utterance['arousal']:.2f}", f"{utterance['valence']:.2f}", utterance["transcript"]]

    result = client.predict(handle_file(str(files["silence"])), TEXT, True, api_name="/analyse")
    assert result[0].startswith("### No speech found") and pipeline_output(result)["utterances"] == []
    assert result[5]["visible"] is False


def test_api_bad_inputs_get_clear_errors_and_the_server_keeps_answering(client, classifier, files):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    good = classifier({"text": TEXT, "audio": str(files["short"])})
    bad = [
        ((handle_file(str(files["not_audio"])), TEXT), r"The recording \('not_audio.wav'\) could not be read as audio"),
        ((handle_file(str(files["short"])), ""), r"The transcript is missing: this model reads the transcript. Type or "
                                                 r"paste what is said"),
        ((handle_file(str(files["short"])), None), r"The transcript is missing"),
        ((None, TEXT), r"The recording is missing: this model listens to speech. Upload an audio file"),
    ]
    for inputs, message in bad:
        with pytest.raises(AppError, match=message):
            client.predict(*inputs, False, api_name="/analyse")
        result = client.predict(handle_file(str(files["short"])), TEXT, False, api_name="/analyse")
        assert_matches(pipeline_output(result), good)

    crop = classifier.processor.max_audio_seconds
    start = time.perf_counter()
    result = client.predict(handle_file(str(files["ten_minutes"])), TEXT, False, api_name="/analyse")
    ten_minutes = time.perf_counter() - start
    assert len(pipeline_output(result)["chunks"]) == int(np.ceil(600 / crop))
    assert "The 600.0 s recording was scored in" in result[0]
    assert ten_minutes < 180, f"a 10-minute recording took {ten_minutes:.0f} s"

    result = client.predict(handle_file(str(files["silence"])), TEXT, False, api_name="/analyse")
    silence = pipeline_output(result)
    assert_matches(silence, classifier({"text": TEXT, "audio": str(files["silence"])}, chunk_length_s=crop))
    assert np.isfinite([silence["arousal"], silence["valence"]]).all()
    result = client.predict(handle_file(str(files["short"])), TEXT, False, api_name="/analyse")
    assert_matches(pipeline_output(result), good)


# ---------------------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Selenium; skipped (or failed, with KEMD_REQUIRE_BROWSER=1) when absent."""
    required = os.environ.get("KEMD_REQUIRE_BROWSER") == "1"
    missing = []
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install 'kemd-emotion[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        missing.append("Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    if missing:
        (pytest.fail if required else pytest.skip)(f"the browser tests need {' and '.join(missing)}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="kemd-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {ARTIFACTS}")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, timeout=RESULT_TIMEOUT, what="the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))
    except Exception:
        shot = ARTIFACTS / "timeout.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"waited {timeout} s for {what}; screenshot in {shot}") from None


def open_page(driver, url):
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#analyse"), what="the demo to load")


def upload(driver, path):
    """Put a file into the Recording box and wait until the server holds it (the player points at its copy)."""
    from selenium.webdriver.common.by import By

    for old in driver.find_elements(By.CSS_SELECTOR, "#recording button[aria-label='Clear']"):
        old.click()
    driver.find_element(By.CSS_SELECTOR, "#recording input[type=file]").send_keys(str(path))


def wait_uploaded(driver, name):
    from selenium.webdriver.common.by import By

    def uploaded(d):  # the download link points at the server's copy once the upload is done
        links = d.find_elements(By.CSS_SELECTOR, "#recording [data-testid=download-link]")
        href = links[0].get_attribute("href") or "" if links else ""
        return "file=" in href and href.endswith(name)

    wait_for(driver, uploaded, what=f"{name} to upload")


def submit(driver, text):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, "#transcript textarea")
    box.clear()
    if text:
        box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#analyse").click()


def status_text(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#status").text


def shown_scores(driver) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#scores [role=row]")  # Gradio's grid: rows of gridcells
    cells = [[cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR, "[role=gridcell]")] for row in rows]
    return [row for row in cells if row]


def test_browser_upload_transcript_submit_shows_the_pipelines_output(browser, server, classifier, files):
    """Must show 1: labels and numbers on the page equal the pipeline's output for the same recording and text."""
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    upload(browser, files["short"])
    wait_uploaded(browser, files["short"].name)
    submit(browser, TEXT)
    wait_for(browser, lambda d: "Predicted:" in status_text(d), what="the result")
    time.sleep(0.5)  # the outputs fade in
    browser.save_screenshot(str(ARTIFACTS / "result.png"))

    want = classifier({"text": TEXT, "audio": str(files["short"])})
    config = classifier.model.config
    thresholds = dict(zip(config.label2id, decision_thresholds(config)))
    status = status_text(browser)
    assert re.search(r"^Predicted: (.+?)(?: \(no emotion|$)", status, re.M)[1].split(", ") == want["labels"]
    arousal, valence = map(float, re.search(r"Arousal ([\d.]+) .* valence ([\d.]+)", status).groups())
    assert abs(arousal - want["arousal"]) <= 0.005 + 1e-6 and abs(valence - want["valence"]) <= 0.005 + 1e-6
    rows = wait_for(browser, lambda d: len(shown_scores(d)) == 7 and shown_scores(d), what="the score table")
    assert [row[0] for row in rows] == [e["label"] for e in want["emotions"]]
    for row, emotion in zip(rows, want["emotions"]):
        assert abs(float(row[1]) - emotion["score"]) <= 0.0005 + 1e-6, (row, emotion)
        assert row[2] == f"{thresholds[emotion['label']]:.2f}" and row[3] == ("yes" if emotion["label"] in want["labels"] else "")
    images = browser.find_elements(By.CSS_SELECTOR, "#emotion-bars img, #circumplex img")
    assert len(images) == 2 and all(image.size["height"] > 100 for image in images)
    assert not browser.find_elements(By.CSS_SELECTOR, "#timeline img")

    # One click on the long example fills recording and transcript; the timeline appears for it.
    example = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button") if "timeline" in b.text)
    example.click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#transcript textarea").get_attribute("value"),
             what="the example's transcript")
    wait_uploaded(browser, "long_neutral_angry_sad.wav")
    browser.find_element(By.CSS_SELECTOR, "#analyse").click()
    wait_for(browser, lambda d: "windows of" in status_text(d) and d.find_elements(By.CSS_SELECTOR, "#timeline img"),
             what="the timeline")
    time.sleep(0.5)
    browser.save_screenshot(str(ARTIFACTS / "timeline.png"))
    assert "The 12.0 s recording was scored in" in status_text(browser)

    # Ticking "Cut at utterances" scores the same recording utterance by utterance, each listed under the timeline.
    browser.find_element(By.CSS_SELECTOR, "#cut-at-utterances input[type=checkbox]").click()
    browser.find_element(By.CSS_SELECTOR, "#analyse").click()
    wait_for(browser, lambda d: "utterance(s) found" in status_text(d) and d.find_elements(By.CSS_SELECTOR,
                                                                                            "#timeline img"),
             what="the utterance timeline")
    rows = wait_for(browser, lambda d: [[cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR,
                                                                                          "[role=gridcell]")]
                                        for row in d.find_elements(By.CSS_SELECTOR, "#utterances [role=row]")
                                        if row.find_elements(By.CSS_SELECTOR, "[role=gridcell]")],
                    what="the utterance table")
    time.sleep(0.5)
    browser.save_screenshot(str(ARTIFACTS / "utterances.png"))
    found = int(status_text(browser).split(" utterance(s) found")[0].split()[-1])
    assert len(rows) == found >= 1 and all(len(row) == 6 and float(row[0]) < float(row[1]) for row in rows)


def test_browser_non_audio_file_shows_a_clear_error_and_the_page_keeps_working(browser, server, classifier, files):
    from selenium.webdriver.common.by import By

    def toasts(d):
        return [t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body")]

    open_page(browser, server)
    upload(browser, files["not_audio"])  # a .wav name, text inside: reaches the server
    wait_uploaded(browser, files["not_audio"].name)
    submit(browser, TEXT)
    messages = wait_for(browser, lambda d: [t for t in toasts(d) if "could not be read as audio" in t],
                        what="the error")
    wait_for(browser, lambda d: status_text(d).startswith("Not analysed."), what="the status to say so")
    time.sleep(0.5)  # the message box fades in
    browser.save_screenshot(str(ARTIFACTS / "not_audio.png"))
    assert messages[0].startswith("Error")
    assert "The recording ('not_audio.wav') could not be read as audio (WAV, FLAC, OGG or MP3)" in messages[0]
    assert "Traceback" not in browser.page_source and "File \"" not in messages[0]

    # A file the browser itself refuses (not audio by type) is named too.
    upload(browser, files["text_file"])
    wait_for(browser, lambda d: [t for t in toasts(d) if "Invalid file type: notes.txt" in t], what="the type warning")

    # The same page then still answers a good request.
    for close in browser.find_elements(By.CSS_SELECTOR, ".toast-close"):
        close.click()
    upload(browser, files["short"])
    wait_uploaded(browser, files["short"].name)
    submit(browser, TEXT)
    wait_for(browser, lambda d: "Predicted:" in status_text(d), what="the result after the error")
    want = classifier({"text": TEXT, "audio": str(files["short"])})
    assert [row[0] for row in shown_scores(browser)] == [e["label"] for e in want["emotions"]]
