"""Embedding -> bidirectional GRU -> Linear (-> optional CRF) tagger."""
import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

BACKENDS = ("gru_cuda", "nn")


def gru_class(backend):
    """The GRU module for a backend; gru_cuda is imported only when asked for."""
    if backend == "nn":
        return nn.GRU
    if backend == "gru_cuda":
        import gru_cuda  # noqa: PLC0415 - optional, built separately
        return gru_cuda.GRU
    raise ValueError(f"unknown backend {backend!r}, expected one of {BACKENDS}")


class Tagger(nn.Module):
    def __init__(self, vocab_size, num_tags, embed_size=128, hidden_size=128,
                 layers=2, dropout=0.3, crf=False, backend="gru_cuda", bigram_vocab_size=0,
                 bigram_embed_size=0):
        super().__init__()
        # Backends may draw different amounts of randomness while building;
        # rewinding to this state before init makes the weights backend-free.
        rng_state = torch.random.get_rng_state()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        # Char bigrams (each char with the next), the usual stand-in for pretrained
        # character embeddings: a second embedding beside the char's.
        self.bigram_embed = nn.Embedding(bigram_vocab_size, bigram_embed_size, padding_idx=0) \
            if bigram_vocab_size else None
        self.gru = gru_class(backend)(
            embed_size + (bigram_embed_size if bigram_vocab_size else 0), hidden_size,
            num_layers=layers, batch_first=True,
            bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden_size, num_tags)
        self.crf = None
        if crf:
            from torchcrf import CRF  # noqa: PLC0415 - only needed with --crf
            self.crf = CRF(num_tags, batch_first=True)
        torch.random.set_rng_state(rng_state)
        self._init_weights(hidden_size)

    def _init_weights(self, hidden_size):
        # Same init for every backend, drawn in a fixed order, so --backend nn
        # and --backend gru_cuda start from identical weights for one seed.
        bound = 1.0 / math.sqrt(hidden_size)
        with torch.no_grad():
            self.embed.weight.normal_()
            self.embed.weight[0].zero_()
            if self.bigram_embed is not None:
                self.bigram_embed.weight.normal_()
                self.bigram_embed.weight[0].zero_()
            for _, p in sorted(self.gru.named_parameters()):
                p.uniform_(-bound, bound)
            self.out.reset_parameters()
            if self.crf is not None:
                self.crf.reset_parameters()

    def emissions(self, x, lengths):
        """Per-char tag scores (B, T, num_tags) for padded ids x (B, T), or (B, T, 2)
        with bigram ids, and lengths."""
        if x.dim() == 3:
            h = torch.cat([self.embed(x[..., 0]), self.bigram_embed(x[..., 1])], -1)
        else:
            h = self.embed(x)
        h = self.drop(h)
        # Packing keeps padding out of the recurrence, which matters most for
        # the backward direction: it must start at each sentence's last char.
        packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return self.out(self.drop(out))

    def loss(self, em, y, mask):
        """Mean loss per real (non-padding) character from emissions em."""
        if self.crf is not None:
            return -self.crf(em, y, mask=mask, reduction="token_mean")
        return nn.functional.cross_entropy(em[mask], y[mask])

    @torch.no_grad()
    def decode(self, em, mask):
        """Best tag ids per sentence from emissions, each as long as its sentence."""
        if self.crf is not None:
            return self.crf.decode(em, mask=mask)
        best = em.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, mask.sum(1).tolist())]
