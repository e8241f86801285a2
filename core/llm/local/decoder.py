"""A hand-written single-stream decoder for the Llama architecture, fed the weights of a loaded
transformers model.

Why not `model.generate`: at batch 1 a decode step of SmolLM2-135M is bound by reading the
weights, not by arithmetic. Measured on the 2-core CPU this project runs on (bench/RESULTS.md): the
fp32 weights are 538 MB, merely reading them once takes ~18 ms, so no fp32 decoder passes ~55
tokens/s there (`generate`: ~16; this decoder in fp32: ~19). So this decoder

* stores the matmul weights in half precision (fp16 on CPU, where a one-token fp16 matmul reads at
  memory speed while bf16 measured 2x slower; bf16 on CUDA) and keeps everything else in fp32:
  residual stream, norms, RoPE, SiLU, attention, KV cache. A step then reads 268 MB, and greedy
  output matches fp32 `generate` token for token except at near-ties (the flips we measured were
  where fp32's top two logits were 0.005-0.011 apart; half precision moves logits by ~0.1);
* fuses q/k/v and gate/up into one matmul each, computes logits for the last position only, does
  RoPE as one complex multiply, and writes into a preallocated KV cache;
* on CUDA, replays each decode step as a CUDA graph (one launch instead of ~1,500 small kernels),
  which is what turns per-token launch overhead (peer: ~18 tokens/s on an H100) into hundreds.

Opt-in "int4" weights (CPU) run the GGUF's own Q4_1 blocks through torch's int4 kernel: ~1.5x
faster again, but that kernel takes bf16 activations, so greedy output drifts from fp32 sooner.

The decoder holds mutable state (the KV cache): callers serialise use with a lock.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

WeightFormat = Literal["fp32", "fp16", "bf16", "int4"]
WEIGHT_FORMATS: tuple[WeightFormat, ...] = ("fp32", "fp16", "bf16", "int4")

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}

# The KV cache grows in chunks of this many positions (fp32: 47 MB per 1,024 positions here).
_CACHE_CHUNK = 1024
# CUDA graphs attend over a fixed slice of the cache; one graph per bucket keeps short answers from
# reading a long cache. Positions beyond the last bucket decode eagerly.
_GRAPH_BUCKETS = (512, 2048, 4096)
_INT4_GROUP = 32  # GGUF Q4_1 blocks are 32 weights along the input dimension


def default_weight_format(device: torch.device) -> WeightFormat:
    # fp16 matvecs read at memory speed on CPU (bf16 ones measured 2x slower here); on CUDA bf16
    # has fp32's range, so large activations cannot overflow.
    return "bf16" if device.type == "cuda" else "fp16"


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked: greedy when `temperature` is 0."""

    temperature: float = 0.0
    top_p: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class _Linear:
    """A matmul weight in the chosen storage format."""

    __slots__ = ("_scales", "_weight", "dtype", "fmt", "upcast_many")

    def __init__(self, weight: torch.Tensor, fmt: WeightFormat, device: torch.device) -> None:
        self.fmt = fmt
        self._scales: torch.Tensor | None = None
        if fmt == "int4":
            self._weight, self._scales = _pack_int4(weight)
            self.dtype = torch.bfloat16  # the CPU int4 kernel is vectorised for bf16 inputs only
        else:
            self.dtype = _DTYPES[fmt]
            self._weight = weight.to(device=device, dtype=self.dtype).contiguous()
        # CPUs without fp16 arithmetic (no AVX512-FP16) read fp16 weights at memory speed for one
        # token, but multiply several tokens 2-4x slower than fp32 (36-token prefill: 220 ms
        # against 109 ms here); several tokens at once go through fp32 copies made on the fly.
        self.upcast_many = fmt == "fp16" and device.type == "cpu"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T; x in `dtype`, or in fp32 when it has several rows and `upcast_many`."""
        if self._scales is not None:
            return torch._weight_int4pack_mm_for_cpu(x, self._weight, _INT4_GROUP, self._scales)
        if x.dtype == torch.float32 and self._weight.dtype != torch.float32:
            return F.linear(x, self._weight.float())
        return F.linear(x, self._weight)


def _pack_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-pack a dequantised GGUF Q4_1 weight (w = q * d + m per block of 32) for the int4 kernel.

    The blocks are recovered exactly (d and m are fp16 in the file, q in 0..15); a weight that
    does not have that structure is refused rather than silently re-quantised.
    """
    n, k = weight.shape
    if k % _INT4_GROUP:
        raise ValueError("int4 needs the input dimension to be a multiple of 32")
    blocks = weight.float().reshape(n, k // _INT4_GROUP, _INT4_GROUP)
    low = blocks.amin(-1, keepdim=True)
    step = ((blocks.amax(-1, keepdim=True) - low) / 15).half().float()
    q = ((blocks - low) / step.clamp(min=1e-12)).round().clamp(0, 15)
    if not torch.equal(q * step + low, blocks):
        raise ValueError("the weights are not GGUF Q4_1 blocks; int4 would re-quantise them")
    packed = torch._convert_weight_to_int4pack_for_cpu(q.reshape(n, k).to(torch.int32), 2)
    # The kernel computes (q - 8) * scale + zero.
    scales = torch.stack([step.squeeze(-1), (low + 8 * step).squeeze(-1)], dim=-1)
    return packed, scales.transpose(0, 1).contiguous().to(torch.bfloat16)


def _into_huge_pages(linears: list[_Linear]) -> mmap.mmap | None:
    """Move CPU matmul weights into one anonymous mapping advised for transparent huge pages.

    Every decode step streams all of them from memory; with 2 MB pages instead of 4 kB ones the
    TLB stops missing along the way, which measured 5-7% more tokens/s here. Returns the mapping
    (keep it alive with the weights), or None where madvise is not available.
    """
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or not linears:
        return None
    align = 64
    sizes = [lin._weight.numel() * lin._weight.element_size() for lin in linears]
    total = sum(-(-size // align) * align for size in sizes)
    huge = 2 << 20
    try:
        arena = mmap.mmap(-1, -(-total // huge) * huge, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        arena.madvise(advice)
    except (OSError, ValueError):
        return None
    memory = torch.frombuffer(arena, dtype=torch.uint8)
    offset = 0
    for lin, size in zip(linears, sizes, strict=True):
        weight = lin._weight
        moved = memory[offset : offset + size].view(weight.dtype).view(weight.shape)
        moved.copy_(weight)
        lin._weight = moved
        offset += -(-size // align) * align
    return arena


@dataclass
class _Layer:
    attn_norm: torch.Tensor
    qkv: _Linear
    o: _Linear
    mlp_norm: torch.Tensor
    gate_up: _Linear
    down: _Linear
    k: torch.Tensor  # [capacity, kv_heads, head_dim]
    v: torch.Tensor


@dataclass
class _Graph:
    graph: Any  # torch.cuda.CUDAGraph
    logits: torch.Tensor


class LlamaDecoder:
    """Prefill + one-token-at-a-time decoding of one sequence, reusing one KV cache."""

    def __init__(
        self,
        model: Any,
        *,
        device: torch.device | str | None = None,
        weights: WeightFormat | None = None,
        cuda_graphs: bool = True,
        static_steps: bool = False,
        max_context: int | None = None,
    ) -> None:
        """`model`: a loaded transformers `LlamaForCausalLM` (any device and dtype; its weights
        are copied). `static_steps` forces the graph-shaped decode step without capturing a
        graph (used to test on CPU the code that CUDA captures). `max_context` caps the model's
        context (and so the KV cache)."""
        config = model.config
        if config.model_type != "llama":
            raise ValueError(f"LlamaDecoder cannot run a {config.model_type!r} model")
        rope = getattr(config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError("LlamaDecoder implements the default RoPE only")
        if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
            raise ValueError("LlamaDecoder implements bias-free Llama layers only")

        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.weights: WeightFormat = weights or default_weight_format(self.device)
        if self.weights == "int4" and self.device.type != "cpu":
            raise ValueError("int4 weights use a CPU kernel; use bf16 on CUDA")
        self.vocab_size = int(config.vocab_size)
        self.max_context = int(config.max_position_embeddings)
        if max_context is not None:
            self.max_context = min(self.max_context, max_context)
        self._hidden = int(config.hidden_size)
        self._heads = int(config.num_attention_heads)
        self._kv_heads = int(config.num_key_value_heads)
        self._head_dim = int(getattr(config, "head_dim", None) or self._hidden // self._heads)
        self._intermediate = int(config.intermediate_size)
        self._eps = float(config.rms_norm_eps)
        self._act = torch.float32  # residual stream, norms, RoPE, attention, KV cache

        state: dict[str, torch.Tensor] = {n: t.detach() for n, t in model.state_dict().items()}
        on = self.device

        def tensor(name: str) -> torch.Tensor:
            return state[name].to(device=on, dtype=self._act)

        self._embed = tensor("model.embed_tokens.weight")
        head_name = "model.embed_tokens.weight" if config.tie_word_embeddings else "lm_head.weight"
        # The int4 kernel needs 32-blocks of 4-bit values; the tied head is Q8_0 in the GGUF, so it
        # stays in fp16 there.
        head_fmt: WeightFormat = "fp16" if self.weights == "int4" else self.weights
        self._head = _Linear(state[head_name], head_fmt, on)
        self._final_norm = tensor("model.norm.weight")
        self._layers: list[_Layer] = []
        empty_cache = torch.zeros(0, self._kv_heads, self._head_dim, dtype=self._act, device=on)
        for i in range(int(config.num_hidden_layers)):
            p = f"model.layers.{i}."
            qkv = self._qkv(*(state[p + f"self_attn.{x}_proj.weight"] for x in "qkv"))
            gate_up = torch.cat(
                [state[p + "mlp.gate_proj.weight"], state[p + "mlp.up_proj.weight"]]
            )
            self._layers.append(
                _Layer(
                    attn_norm=tensor(p + "input_layernorm.weight"),
                    qkv=_Linear(qkv, self.weights, on),
                    o=_Linear(state[p + "self_attn.o_proj.weight"], self.weights, on),
                    mlp_norm=tensor(p + "post_attention_layernorm.weight"),
                    gate_up=_Linear(gate_up, self.weights, on),
                    down=_Linear(state[p + "mlp.down_proj.weight"], self.weights, on),
                    k=empty_cache,
                    v=empty_cache,
                )
            )
        self._compute = self._layers[0].qkv.dtype
        self._arena: mmap.mmap | None = None
        if on.type == "cpu":
            linears = [self._head]
            for layer in self._layers:
                linears += [layer.qkv, layer.o, layer.gate_up, layer.down]
            self._arena = _into_huge_pages(linears)

        # RoPE as one complex multiply: angles as transformers computes them (fp32), applied to
        # (x[i], x[i + d/2]) pairs that the q/k weight rows were interleaved into (see _qkv).
        theta = float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        d = self._head_dim
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        angles = torch.arange(self.max_context, dtype=torch.float32)[:, None] * inv_freq
        self._rope = torch.polar(torch.ones_like(angles), angles).to(on)  # [positions, d/2]

        self._capacity = 0
        self._static = static_steps or (cuda_graphs and on.type == "cuda")
        self._use_graphs = cuda_graphs and on.type == "cuda" and not static_steps
        self._graphs: dict[int, _Graph] = {}
        if self._static:
            # Graph steps read their inputs from fixed tensors and the cache must never move, so
            # it is allocated whole (fp32 on CUDA: 377 MB for 8,192 positions).
            self._ensure_capacity(self.max_context)
            self._token_buf = torch.zeros(1, dtype=torch.long, device=on)
            self._pos_buf = torch.zeros(1, dtype=torch.long, device=on)
            self._positions = torch.arange(self._capacity, device=on)

    def _qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q, k and v stacked into one matrix, with each q and k head's rows reordered from
        transformers' halves layout (x[i] rotates with x[i + d/2]) to interleaved pairs (the GGUF
        and original Llama layout), so RoPE is a complex multiply. q and k are reordered alike,
        so attention scores are unchanged."""
        d, half = self._head_dim, self._head_dim // 2
        order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=-1).flatten()

        def interleave(w: torch.Tensor) -> torch.Tensor:
            return w.view(-1, d, w.shape[-1])[:, order].reshape(w.shape)

        return torch.cat([interleave(q), interleave(k), v])

    # -- public ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        sampling: Sampling | None = None,
        stop_ids: frozenset[int] = frozenset(),
        *,
        suppress_ids: frozenset[int] = frozenset(),
    ) -> Iterator[int]:
        """Yield up to `max_new_tokens` tokens; a token in `stop_ids` is yielded and then ends it.

        `suppress_ids` can never be picked (the benchmark suppresses end-of-sequence to get fixed
        lengths, like `min_new_tokens` in transformers). The caller must keep
        len(prompt) + max_new_tokens <= max_context.
        """
        if not prompt:
            raise ValueError("the prompt has no tokens")
        if len(prompt) + max_new_tokens > self.max_context:
            raise ValueError("prompt and answer do not fit the model's context")
        sampling = sampling or Sampling()
        generator: torch.Generator | None = None
        if not sampling.greedy:
            generator = torch.Generator(device=self.device)
            generator.seed()  # fresh entropy per answer, independent of the global RNG
        suppress = torch.tensor(sorted(suppress_ids), dtype=torch.long, device=self.device)
        self._ensure_capacity(len(prompt) + 1)

        logits = self._forward(torch.tensor(prompt, device=self.device), 0)
        position = len(prompt)
        for produced in range(1, max_new_tokens + 1):
            if suppress.numel():
                logits.index_fill_(0, suppress, -torch.inf)
            token = self._pick(logits, sampling, generator)
            yield token
            if token in stop_ids or produced == max_new_tokens:
                return
            if position >= self._capacity:
                # Grown as the answer grows: sizing for max_tokens up front would hold 377 MB of
                # fp32 cache for a full-context budget that most answers never use.
                self._ensure_capacity(position + 1)
            logits = self._decode_step(token, position)
            position += 1

    # -- steps ----------------------------------------------------------------------------------

    def _pick(
        self, logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None
    ) -> int:
        if sampling.greedy:
            return int(logits.argmax())
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            outside = sorted_probs.cumsum(0) - sorted_probs > sampling.top_p
            sorted_probs[outside] = 0.0
            choice = torch.multinomial(sorted_probs, 1, generator=generator)
            return int(order[choice])
        return int(torch.multinomial(probs, 1, generator=generator))

    def _decode_step(self, token: int, position: int) -> torch.Tensor:
        bucket = next((b for b in _GRAPH_BUCKETS if position < b <= self._capacity), None)
        if not self._static or bucket is None:
            return self._forward(torch.tensor([token], device=self.device), position)
        self._token_buf.fill_(token)
        self._pos_buf.fill_(position)
        if not self._use_graphs:
            return self._static_step(bucket)
        graph = self._graphs.get(bucket)
        if graph is None:
            graph = self._capture(bucket)
            if graph is None:
                return self._static_step(bucket)
        graph.graph.replay()
        return graph.logits.clone()

    def _forward(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Run `tokens` at positions start.. through the model; logits of the last one (fp32).

        Prefill (several tokens) must start at 0: it attends causally within the prompt only.
        """
        n = tokens.shape[0]
        end = start + n
        rope = self._rope[start:end, None]
        h = self._embed[tokens]

        def write_kv(layer: _Layer, k: torch.Tensor, v: torch.Tensor) -> None:
            layer.k[start:end] = k
            layer.v[start:end] = v

        def attend(layer: _Layer, q: torch.Tensor) -> torch.Tensor:
            keys, values = layer.k[:end], layer.v[:end]
            if n == 1:
                return self._attend_one(q, keys, values, None)
            out = F.scaled_dot_product_attention(
                q.transpose(0, 1)[None],
                keys.transpose(0, 1)[None],
                values.transpose(0, 1)[None],
                is_causal=True,
                enable_gqa=True,
            )
            return out[0].transpose(0, 1).reshape(n, self._heads * self._head_dim)

        return self._run(h, rope, write_kv, attend)

    def _static_step(self, bucket: int) -> torch.Tensor:
        """One decode step with every shape fixed and inputs read from tensors: capturable."""
        pos = self._pos_buf
        rope = self._rope.index_select(0, pos)[:, None]
        h = self._embed.index_select(0, self._token_buf)
        mask = (self._positions[:bucket] <= pos)[None, None, None, :]

        def write_kv(layer: _Layer, k: torch.Tensor, v: torch.Tensor) -> None:
            layer.k.index_copy_(0, pos, k)
            layer.v.index_copy_(0, pos, v)

        def attend(layer: _Layer, q: torch.Tensor) -> torch.Tensor:
            return self._attend_one(q, layer.k[:bucket], layer.v[:bucket], mask)

        return self._run(h, rope, write_kv, attend)

    def _attend_one(
        self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        # One query position with grouped KV heads: the query heads sharing a KV head are laid
        # out as that head's query rows, so plain attention does GQA without repeating K and V.
        group = self._heads // self._kv_heads
        out = F.scaled_dot_product_attention(
            q.view(self._kv_heads, group, self._head_dim)[None],
            keys.transpose(0, 1)[None],
            values.transpose(0, 1)[None],
            attn_mask=mask,
        )
        return out.reshape(1, self._heads * self._head_dim)

    def _run(
        self,
        h: torch.Tensor,
        rope: torch.Tensor,
        write_kv: Callable[[_Layer, torch.Tensor, torch.Tensor], None],
        attend: Callable[[_Layer, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        n = h.shape[0]
        heads, kv_heads, dim = self._heads, self._kv_heads, self._head_dim
        inter, eps, half = self._intermediate, self._eps, dim // 2
        compute = self._compute
        if n > 1 and self._layers[0].qkv.upcast_many:
            compute = torch.float32

        def norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            # transformers' RMSNorm, op for op; F.rms_norm is not fused on CPU and was slower.
            return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

        for layer in self._layers:
            x = norm(h, layer.attn_norm).to(compute)
            qkv = layer.qkv(x).float().view(n, heads + 2 * kv_heads, dim)
            # q * cos + rotate_half(q) * sin for q and k at once: one op instead of seven.
            pairs = torch.view_as_complex(qkv[:, : heads + kv_heads].view(n, -1, half, 2))
            qk = torch.view_as_real(pairs * rope).view(n, heads + kv_heads, dim)
            write_kv(layer, qk[:, heads:], qkv[:, heads + kv_heads :])
            attn = attend(layer, qk[:, :heads])
            h = h + layer.o(attn.to(compute))  # fp32 + half adds in fp32, no separate cast
            x = norm(h, layer.mlp_norm).to(compute)
            gate_up = layer.gate_up(x).float()
            # SiLU and the product in fp32: in half precision they doubled the logit error.
            act = F.silu(gate_up[:, :inter]) * gate_up[:, inter:]
            h = h + layer.down(act.to(compute))
        x = norm(h[-1:], self._final_norm).to(self._head.dtype)
        return self._head(x)[0].float()

    # -- cache and graphs -----------------------------------------------------------------------

    def _ensure_capacity(self, positions: int) -> None:
        """Make room for `positions` cache entries, keeping what is already there."""
        if positions <= self._capacity:
            return
        size = min(self.max_context, -(-positions // _CACHE_CHUNK) * _CACHE_CHUNK)
        shape = (size, self._kv_heads, self._head_dim)
        for layer in self._layers:
            for name in ("k", "v"):
                # Zeros, not empty: graph steps attend over the whole bucket with masked-out
                # positions, and 0 * NaN from uninitialised memory would still be NaN.
                grown = torch.zeros(shape, dtype=self._act, device=self.device)
                old = getattr(layer, name)
                grown[: old.shape[0]] = old
                setattr(layer, name, grown)
        self._capacity = size

    def _capture(self, bucket: int) -> _Graph | None:
        """Capture the decode step for `bucket` as a CUDA graph, checked against eager.

        Warm-up and capture run the current step with its real inputs, so the KV cache ends up
        exactly as an eager step would leave it. Any failure or mismatch turns graphs off.
        """
        try:
            stream = torch.cuda.Stream(device=self.device)  # type: ignore[no-untyped-call]
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(2):
                    expected = self._static_step(bucket)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                logits = self._static_step(bucket)
            graph.replay()
            # Same kernels, but cuBLAS may pick another algorithm under capture: allow rounding.
            # A broken graph (stale buffer, wrong position) is off by whole logits.
            if not torch.allclose(logits, expected, rtol=1e-2, atol=5e-2):
                raise RuntimeError("graph replay differs from the eager step")
        except Exception:
            log.warning("CUDA graph capture failed; decoding without graphs", exc_info=True)
            self._use_graphs = False
            return None
        captured = _Graph(graph=graph, logits=logits)
        self._graphs[bucket] = captured
        return captured
