"""The encoders' layers: SASRec's Transformer and GRU4Rec's GRU, with STAR's domain-specific linear layers and
normalisations (a layer takes an optional ``domain``: with ``n_domains > 0`` its weights follow STAR's star
topology, shared ⊙ domain-specific)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

INIT_STD = 0.02  # normal(0, 0.02) for embeddings and linear layers, as in BERT and RecBole's SASRec


class DomainLinear(nn.Module):
    """A linear layer; with ``n_domains > 0``, STAR's star topology.

    Domain ``d`` computes ``y = x (W ⊙ W_d)ᵀ + b + b_d`` (Sheng et al., CIKM 2021): the shared
    weight ``W`` times, elementwise, the domain's ``W_d``, which starts at ones, so every domain
    starts as the shared layer. Without domains, or with ``domain=None``, it is ``x Wᵀ + b``.
    """

    def __init__(self, in_features: int, out_features: int, n_domains: int = 0) -> None:
        super().__init__()
        self.n_domains = n_domains
        self.weight = nn.Parameter(torch.empty(out_features, in_features).normal_(0.0, INIT_STD))
        self.bias = nn.Parameter(torch.zeros(out_features))
        if n_domains:
            self.domain_weight = nn.Parameter(torch.ones(n_domains, out_features, in_features))
            self.domain_bias = nn.Parameter(torch.zeros(n_domains, out_features))

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        if not self.n_domains or domain is None:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, self.weight * self.domain_weight[domain], self.bias + self.domain_bias[domain])


class DomainLayerNorm(nn.Module):
    """Layer normalisation; with ``n_domains > 0``, STAR's partitioned normalisation.

    Domain ``d`` scales by ``γ ⊙ γ_d`` and shifts by ``β + β_d``.
    """

    def __init__(self, size: int, n_domains: int = 0) -> None:
        super().__init__()
        self.n_domains = n_domains
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        if n_domains:
            self.domain_weight = nn.Parameter(torch.ones(n_domains, size))
            self.domain_bias = nn.Parameter(torch.zeros(n_domains, size))

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        weight: torch.Tensor = self.weight
        bias: torch.Tensor = self.bias
        if self.n_domains and domain is not None:
            weight, bias = weight * self.domain_weight[domain], bias + self.domain_bias[domain]
        return F.layer_norm(x, (x.shape[-1],), weight, bias)


class TransformerBlock(nn.Module):
    """Pre-norm causal self-attention and a GELU feed-forward layer, each with a residual connection.

    Dropout acts on the residual branches, not on the attention probabilities: on the CPU an
    attention-dropout mask costs more than the attention itself. The query/key/value projection is
    shared by all domains; under STAR the attention's output projection, the feed-forward layers
    and the normalisations are per domain.
    """

    def __init__(self, size: int, heads: int, dropout: float, n_domains: int = 0) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm = DomainLayerNorm(size, n_domains)
        self.qkv = DomainLinear(size, 3 * size)
        self.attention_output = DomainLinear(size, size, n_domains)
        self.feedforward_norm = DomainLayerNorm(size, n_domains)
        self.feedforward_in = DomainLinear(size, 4 * size, n_domains)
        self.feedforward_out = DomainLinear(4 * size, size, n_domains)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """``x`` ``(b, L, d)`` → ``(b, L, d)``; position ``j`` attends to positions ``0..j`` (causal)."""
        batch, length, size = x.shape
        qkv = self.qkv(self.attention_norm(x, domain)).view(batch, length, 3, self.heads, size // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value, is_causal=True)
        attended = attended.transpose(1, 2).reshape(batch, length, size)
        x = x + self.residual_dropout(self.attention_output(attended, domain))
        inner = F.gelu(self.feedforward_in(self.feedforward_norm(x, domain), domain))
        return x + self.residual_dropout(self.feedforward_out(inner, domain))


class TransformerEncoder(nn.Module):
    """SASRec's encoder: learned positions, causal pre-norm blocks and a final normalisation."""

    def __init__(self, size: int, layers: int, heads: int, dropout: float, max_length: int, n_domains: int = 0):
        super().__init__()
        self.positions = nn.Parameter(torch.empty(max_length, size).normal_(0.0, INIT_STD))
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(size, heads, dropout, n_domains) for _ in range(layers))
        self.output_norm = DomainLayerNorm(size, n_domains)

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """``x`` ``(b, L, d)`` item embeddings of right-padded rows → states ``(b, L, d)``."""
        length = x.shape[1]
        x = self.input_dropout(x + self.positions[:length])
        for block in self.blocks:
            x = block(x, domain)
        return self.output_norm(x, domain)

    def top_parameters(self) -> Iterator[nn.Parameter]:
        """The last block and the output normalisation."""
        yield from self.blocks[-1].parameters()
        yield from self.output_norm.parameters()


class GRUEncoder(nn.Module):
    """GRU4Rec's encoder: a (multi-layer) GRU over the item embeddings, projected back to their size."""

    def __init__(self, size: int, hidden_size: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(size, hidden_size, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        for name, weight in self.gru.named_parameters():
            if name.startswith("bias"):
                nn.init.zeros_(weight)
            else:
                nn.init.xavier_uniform_(weight)
        self.output_dropout = nn.Dropout(dropout)
        self.output = DomainLinear(hidden_size, size)

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """``x`` ``(b, L, d)`` → ``(b, L, d)``; right padding never reaches the items before it."""
        hidden, _ = self.gru(self.input_dropout(x))
        return self.output(self.output_dropout(hidden))

    def top_parameters(self) -> Iterator[nn.Parameter]:
        """The last GRU layer and the output projection."""
        last = f"_l{self.gru.num_layers - 1}"
        yield from (weight for name, weight in self.gru.named_parameters() if name.endswith(last))
        yield from self.output.parameters()


# What a SequenceNetwork reads its item embeddings with.
Encoder = TransformerEncoder | GRUEncoder
