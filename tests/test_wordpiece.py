"""The deterministic WordPiece trainer: hand-computed merges, ties broken by text, input order irrelevant."""

import random

import pytest

from kemd_emotion.small_encoders import SPECIAL_TOKENS, train_wordpiece_tokenizer
from kemd_emotion.wordpiece import split_words, train_wordpiece_vocabulary


def test_merges_by_frequency_then_by_text():
    # words: ab x3, ac x1, cd x1 -> pairs (a,##b)=3, (a,##c)=1, (c,##d)=1: ab first, then the tie ac < cd.
    vocabulary = train_wordpiece_vocabulary(["ab ab cd", "ac ab"], vocab_size=100, special_tokens=["[UNK]"])
    assert vocabulary == ["[UNK]", "a", "b", "c", "d", "##b", "##c", "##d", "ab", "ac", "cd"]
    # Stopped after one merge of the tie: the pair whose text sorts first wins, whatever order the texts came in.
    limit = len(vocabulary) - 1
    assert train_wordpiece_vocabulary(["cd ac"], vocab_size=7, special_tokens=["[UNK]"])[-1] == "ac"
    assert train_wordpiece_vocabulary(["ac cd"], vocab_size=7, special_tokens=["[UNK]"])[-1] == "ac"
    assert len(train_wordpiece_vocabulary(["ab ab cd", "ac ab"], vocab_size=limit, special_tokens=["[UNK]"])) == limit


def test_longer_words_build_on_earlier_merges():
    # abc x2, abd x1: (a,##b)=3 -> ab; then (ab,##c)=2 -> abc; then (ab,##d)=1 -> abd.
    vocabulary = train_wordpiece_vocabulary(["abc abc abd"], vocab_size=100, special_tokens=[])
    assert vocabulary[-3:] == ["ab", "abc", "abd"]
    assert set(vocabulary[:4]) == {"a", "b", "c", "d"} and vocabulary[4:7] == ["##b", "##c", "##d"]


def test_same_texts_in_any_order_give_the_same_vocabulary():
    """Many words of equal frequency: where the tokenizers trainer's choice changes from process to process."""
    rng = random.Random(0)
    syllables = [chr(0xAC00 + 37 * i) for i in range(60)]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(300)]
    words = list(dict.fromkeys(words))
    texts = [" ".join(words[i : i + 5]) for i in range(0, len(words), 5)] * 2
    assert set(split_words(texts).values()) == {2}  # every word equally frequent
    first = train_wordpiece_vocabulary(texts, vocab_size=400, special_tokens=SPECIAL_TOKENS)
    assert len(first) == 400 and first[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
    shuffled = list(texts)
    rng.shuffle(shuffled)
    assert train_wordpiece_vocabulary(shuffled, vocab_size=400, special_tokens=SPECIAL_TOKENS) == first


def test_the_tokenizer_keeps_hangul_and_splits_unseen_words(tmp_path):
    tokenizer = train_wordpiece_tokenizer(["오늘 날씨가 정말 좋네요", "정말 화가 나요"], vocab_size=200, save_dir=tmp_path)
    assert tokenizer.tokenize("정말 좋네요") == ["정말", "좋네요"]
    assert tokenizer.tokenize("화가요") == ["화가", "##요"]  # an unseen word from seen pieces
    assert tokenizer.tokenize("화가났어") == ["[UNK]"]  # WordPiece: a word with an unseen character is unknown
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()[:5] == SPECIAL_TOKENS
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        train_wordpiece_vocabulary(["a"], vocab_size=0)
