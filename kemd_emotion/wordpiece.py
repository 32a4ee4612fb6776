"""A WordPiece vocabulary trained deterministically: the same texts give the same vocabulary, in every process.

The `tokenizers` WordPiece trainer numbers the pieces it meets in hash-map order, which changes from process to
process, and breaks ties between equally frequent merges by those numbers: on a corpus with many words of equal
frequency two runs give different vocabularies (same size, other pieces), hence different models and tables. This
is the same algorithm (BPE merges over words, ``##`` for word-internal pieces, as `tokenizers` trains WordPiece)
with every tie broken by the pieces' text.

>>> train_wordpiece_vocabulary(["ab ab ab ac"], vocab_size=100, special_tokens=["[UNK]"])
['[UNK]', 'a', 'b', 'c', '##b', '##c', 'ab', 'ac']
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence

CONTINUATION = "##"
"""The prefix of a piece that continues a word (BERT's convention)."""


def split_words(texts: Iterable[str], *, lowercase: bool = False) -> Counter:
    """Word -> count, with BERT's normalisation (control characters out, CJK characters apart, accents and case
    kept unless `lowercase`) and pre-tokenisation (whitespace and punctuation), as the trained tokenizer will see."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=lowercase)
    pre_tokenizer = BertPreTokenizer()
    counts: Counter = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def train_wordpiece_vocabulary(
    texts: Iterable[str],
    vocab_size: int = 1000,
    *,
    special_tokens: Sequence[str] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
    limit_alphabet: int = 2000,
    min_frequency: int = 1,
    lowercase: bool = False,
) -> list[str]:
    """The vocabulary (id order) of a WordPiece tokenizer trained on `texts`.

    Order: `special_tokens`, the alphabet (the `limit_alphabet` most frequent characters, by code point), their
    ``##`` forms that occur inside words (sorted), then one piece per merge until `vocab_size` pieces or no pair
    occurs `min_frequency` times. Each merge joins the most frequent adjacent pair of pieces; among equally frequent
    pairs, the one whose (left, right) text sorts first.
    """
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer; got {vocab_size!r}.")
    counts = split_words(texts, lowercase=lowercase)
    words = sorted(counts)  # a fixed order, whatever order the texts came in
    frequency = [counts[word] for word in words]

    characters: Counter = Counter()
    for word, count in zip(words, frequency):
        for character in word:
            characters[character] += count
    alphabet = sorted(sorted(characters, key=lambda c: (-characters[c], c))[:limit_alphabet])
    kept = set(alphabet)

    symbols = []
    for word in words:
        pieces = [c for c in word if c in kept]
        symbols.append([piece if i == 0 else CONTINUATION + piece for i, piece in enumerate(pieces)])
    vocabulary = list(dict.fromkeys([*special_tokens, *alphabet]))
    vocabulary += sorted({piece for pieces in symbols for piece in pieces[1:]} - set(vocabulary))
    known = set(vocabulary)

    pair_counts: Counter = Counter()
    words_with_pair: dict[tuple[str, str], set[int]] = {}
    for index, pieces in enumerate(symbols):
        for pair in zip(pieces, pieces[1:]):
            pair_counts[pair] += frequency[index]
            words_with_pair.setdefault(pair, set()).add(index)
    heap = [(-count, left, right) for (left, right), count in pair_counts.items()]
    heapq.heapify(heap)

    while len(vocabulary) < vocab_size and heap:
        negative, left, right = heapq.heappop(heap)
        if pair_counts.get((left, right), 0) != -negative:
            continue  # a stale entry: this pair's count changed since it was pushed
        if -negative < min_frequency:
            break
        merged = left + right[len(CONTINUATION):]
        if merged not in known:
            vocabulary.append(merged)
            known.add(merged)
        changed = set()
        for index in sorted(words_with_pair.pop((left, right), ())):
            old = symbols[index]
            new, i = [], 0
            while i < len(old):
                if i + 1 < len(old) and old[i] == left and old[i + 1] == right:
                    new.append(merged)
                    i += 2
                else:
                    new.append(old[i])
                    i += 1
            symbols[index] = new
            before, after = Counter(zip(old, old[1:])), Counter(zip(new, new[1:]))
            for pair in before | after:
                delta = (after[pair] - before[pair]) * frequency[index]
                if delta:
                    pair_counts[pair] += delta
                    changed.add(pair)
                if after[pair]:
                    words_with_pair.setdefault(pair, set()).add(index)
                elif pair in words_with_pair:
                    words_with_pair[pair].discard(index)
        pair_counts.pop((left, right), None)
        for pair in sorted(changed):
            count = pair_counts.get(pair, 0)
            if count > 0:
                heapq.heappush(heap, (-count, *pair))
            else:
                pair_counts.pop(pair, None)
    return vocabulary


__all__ = ["train_wordpiece_vocabulary", "split_words", "CONTINUATION"]
