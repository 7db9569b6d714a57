"""llamaperf's PyTorch worker: runs one model through Hugging Face transformers on PyTorch.

Speaks the line protocol of docs/engine.md ("PyTorch"): the first stdin line is the load request
{"model", "backend", "dtype", "threads", "batch", "context"}; the worker answers {"ready": {...}} or
{"error": ...} (exit code 1). Then each request line ({"op": "reset"} or {"op": "forward", "ids",
"pos"}) gets one answer line: {"ok": true}, {"next": [token id per sequence]} or {"error": ...}.
EOF on stdin ends the worker with exit code 0. Logs go to stderr only.

Backends: "eager" (the plain forward with a DynamicCache), "compile" (torch.compile of the forward
over a StaticCache), "ipex" (ipex.llm.optimize, which rewrites the model into its own fused
modules and KV cache), "zentorch" (torch.compile with the zentorch backend over a StaticCache,
after untying lm_head from embed_tokens). Compilation and warm-up happen while loading.
"""

import json
import os
import sys
import time

BACKENDS = ("eager", "compile", "ipex", "zentorch")
DTYPES = ("bf16", "f32")
# Tokens of the warm-up forwards; any ids inside the vocabulary do.
WARMUP_ID = 100
# Length of the longest forward a run sends: a fill chunk, in tokens.
FILL_CHUNK = 512
# The smallest cache the warm-up fits in, in tokens: shorter runs get this many positions.
MIN_CONTEXT = 64


class WorkerError(Exception):
    """A failure the user can act on; its message becomes the {"error": ...} line."""


def protocol_output():
    """Keeps the real stdout for protocol lines and points fd 1 (and sys.stdout) at stderr.

    Libraries print to stdout (ipex.llm.optimize does, and C++ code may): none of that may reach
    the protocol's pipe."""
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


PROTOCOL = protocol_output()


def send(message):
    """Writes one JSON line to the protocol's stdout and flushes it."""
    PROTOCOL.write(json.dumps(message) + "\n")
    PROTOCOL.flush()


def log(text):
    """Writes one log line to stderr."""
    sys.stderr.write("torch_worker: " + text + "\n")
    sys.stderr.flush()


def parse_load_request(line):
    """Checks the load request line and returns it as a dict."""
    try:
        request = json.loads(line)
    except json.JSONDecodeError as e:
        raise WorkerError(f"load request is not JSON: {e}") from e
    if not isinstance(request, dict):
        raise WorkerError("load request must be a JSON object")
    for key in ("model", "backend", "dtype", "threads", "batch", "context"):
        if key not in request:
            raise WorkerError(f"load request lacks key '{key}'")
    if request["backend"] not in BACKENDS:
        raise WorkerError(f"backend '{request['backend']}' is not one of {', '.join(BACKENDS)}")
    if request["dtype"] not in DTYPES:
        raise WorkerError(f"dtype '{request['dtype']}' is not one of {', '.join(DTYPES)}")
    for key in ("threads", "batch", "context"):
        value = request[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise WorkerError(f"'{key}' must be a positive integer, got {value!r}")
    # A shorter run still gets a cache the warm-up fits in: a few slots more to attend over.
    request["context"] = max(request["context"], MIN_CONTEXT)
    model = request["model"]
    if os.path.isdir(model):
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise WorkerError(f"model folder '{model}' has no config.json: not a Hugging Face model folder")
    elif not os.path.isfile(model):
        raise WorkerError(f"model '{model}' does not exist")
    else:
        with open(model, "rb") as f:
            if f.read(4) != b"GGUF":
                raise WorkerError(f"model '{model}' is not a GGUF file")
    return request


def gguf_tensor_types(path):
    """Names of the tensor types stored in a GGUF file (e.g. ["Q4_1", "Q6_K"]), sorted."""
    import gguf

    return sorted({tensor.tensor_type.name for tensor in gguf.GGUFReader(path).tensors})


def load_model(path, torch_dtype):
    """Loads a GGUF file (dequantized by transformers) or an HF folder as a causal LM in eval mode.

    Returns (model, source tensor types: empty for an HF folder)."""
    from transformers import AutoModelForCausalLM

    if os.path.isdir(path):
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch_dtype)
        source_dtypes = []
    else:
        folder, name = os.path.split(os.path.abspath(path))
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch_dtype)
        source_dtypes = gguf_tensor_types(path)
    model = model.to(torch_dtype)
    model.eval()
    return model, source_dtypes


class HfRunner:
    """Forwards through a transformers model with a transformers cache; greedy last-position argmax.

    static=False: a DynamicCache that grows with the tokens (eager). static=True: a StaticCache of
    `context` positions per sequence, so the tensor shapes stay fixed for torch.compile.
    forward_fn: the model's forward or its compiled version."""

    def __init__(self, model, batch, context, static, forward_fn):
        import torch
        from transformers import DynamicCache, StaticCache

        self.forward_fn = forward_fn
        self.torch = torch
        self.cache = None
        self.dynamic_cache = DynamicCache
        if static:
            self.cache = StaticCache(
                config=model.config,
                max_batch_size=batch,
                max_cache_len=context,
                device="cpu",
                dtype=model.dtype,
            )
        self.static = static
        self.reset()

    def reset(self):
        """Forgets every cached token."""
        if self.static:
            self.cache.reset()
        else:
            self.cache = self.dynamic_cache()

    def forward(self, ids, pos):
        """Runs `ids` (batch x n token ids) at positions pos..pos+n-1; returns the next id per sequence."""
        torch = self.torch
        input_ids = torch.tensor(ids, dtype=torch.long)
        n = input_ids.shape[1]
        cache_position = torch.arange(pos, pos + n, dtype=torch.long)
        out = self.forward_fn(
            input_ids=input_ids,
            position_ids=cache_position.unsqueeze(0).expand(input_ids.shape[0], n),
            cache_position=cache_position,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        if not self.static:
            self.cache = out.past_key_values
        return out.logits[:, -1, :].argmax(dim=-1).tolist()


class IpexRunner:
    """Forwards through the TorchScript graph ipex.llm.optimize(deployment_mode=True) traced.

    That graph (model.trace_graph, what IPEX's own generate() calls) takes and returns
    past_key_values as one tuple per layer of IPEX's indirect-access KV cache: (sequence state,
    key cache, value cache, beam index); an empty cache is the tuple IPEX's generate() starts from,
    and the graph returns (logits, new past_key_values)."""

    def __init__(self, model, batch, context):
        import torch

        self.model = model
        self.torch = torch
        self.batch = batch
        self.context = context
        self.past = None
        self.reset()

    def reset(self):
        """Forgets every cached token: the empty cache of IPEX's generate()."""
        torch = self.torch
        dtype = self.model.dtype
        beam_idx = torch.zeros([max(2048, self.context), self.batch], dtype=torch.long).contiguous()
        self.past = tuple(
            (
                torch.zeros([1, 0, 0, 1], dtype=torch.long).contiguous(),
                torch.zeros([1, 1, 1, 1], dtype=dtype).contiguous(),
                torch.zeros([1, 1, 1, 1], dtype=dtype).contiguous(),
                beam_idx,
            )
            for _ in range(self.model.config.num_hidden_layers)
        )

    def forward(self, ids, pos):
        """Runs `ids` (batch x n token ids) at positions pos..pos+n-1; returns the next id per sequence."""
        torch = self.torch
        input_ids = torch.tensor(ids, dtype=torch.long)
        batch, n = input_ids.shape
        out = self.model.trace_graph(
            input_ids=input_ids,
            attention_mask=torch.ones([batch, pos + n], dtype=torch.long),
            past_key_values=self.past,
            position_ids=torch.arange(pos, pos + n, dtype=torch.long).unsqueeze(0).expand(batch, n),
        )
        logits, self.past = out[0], out[1]
        return logits[:, -1, :].argmax(dim=-1).tolist()


def untie_lm_head(model):
    """Gives lm_head its own copy of the weights it shares with embed_tokens; True if they were tied."""
    import torch

    embed = model.get_input_embeddings().weight
    head = model.lm_head.weight
    if head.data_ptr() != embed.data_ptr():
        return False
    model.lm_head.weight = torch.nn.Parameter(head.detach().clone(), requires_grad=False)
    model.config.tie_word_embeddings = False
    return True


def warm_up(runner, batch, context):
    """Runs every forward shape a run sends (prompt, fill chunk at the start and after a prompt,
    decode steps) so that compilation and tracing are over before the first measured forward.

    Three prompt lengths make torch.compile generalize the sequence length; decode steps of one
    token are a shape of their own and run three times in a row (TorchScript optimizes a graph on
    its second call)."""
    chunk = min(FILL_CHUNK, context // 2 - 16)
    prompt = 7
    plan = [(prompt, 0), (1, prompt), (1, prompt + 1), (1, prompt + 2), (chunk, prompt + 3)]
    plan += [(1, prompt + 3 + chunk), (1, prompt + 4 + chunk)]
    plan += [(chunk, 0), (prompt + 6, chunk), (1, 2 * prompt + 6 + chunk), (1, 2 * prompt + 7 + chunk)]
    for n, pos in plan:
        if pos == 0:
            runner.reset()
        start = time.perf_counter()
        runner.forward([[WARMUP_ID] * n] * batch, pos)
        log(f"warm-up forward of {n} token(s) at {pos}: {time.perf_counter() - start:.2f} s")
    runner.reset()


def apply_backend(model, request, torch_dtype, notes):
    """Applies the requested backend to the model; returns (runner, extension name or None)."""
    import torch

    backend, batch, context = request["backend"], request["batch"], request["context"]
    if backend == "eager":
        return HfRunner(model, batch, context, static=False, forward_fn=model.forward), None
    if backend == "compile":
        torch._inductor.config.compile_threads = 1
        runner = HfRunner(model, batch, context, static=True, forward_fn=torch.compile(model.forward))
        notes.append(f"torch.compile (inductor) of the forward over a StaticCache of {context} positions")
        return runner, None
    if backend == "zentorch":
        try:
            import zentorch
        except ImportError as e:
            raise WorkerError(f"zentorch is not installed in this environment ({e}); run scripts/setup-torch.sh zentorch") from e
        if untie_lm_head(model):
            notes.append("lm_head untied from embed_tokens before zentorch compiles")
        torch._inductor.config.compile_threads = 1
        compiled = torch.compile(model.forward, backend="zentorch")
        runner = HfRunner(model, batch, context, static=True, forward_fn=compiled)
        notes.append(f"torch.compile (zentorch backend) of the forward over a StaticCache of {context} positions")
        return runner, f"zentorch {public_version(zentorch.__version__)}"
    try:
        import intel_extension_for_pytorch as ipex
    except ImportError as e:
        raise WorkerError(f"intel_extension_for_pytorch is not installed in this environment ({e}); run scripts/setup-torch.sh ipex") from e
    if getattr(model.config, "architectures", None) is None:
        model.config.architectures = [type(model).__name__]
        notes.append(f"config.architectures set to [{type(model).__name__}] (GGUF models have none)")
    model = ipex.llm.optimize(model, dtype=torch_dtype, inplace=True, deployment_mode=True)
    notes.append("ipex.llm.optimize(deployment_mode=True): fused modules, IPEX's KV cache, TorchScript trace")
    return IpexRunner(model, batch, context), f"ipex {public_version(ipex.__version__)}"


def public_version(version):
    """A version without its local part: "2.8.0+cu128" -> "2.8.0"."""
    return version.split("+")[0]


def load(request):
    """Loads and prepares the model; returns (runner, the "ready" object, vocabulary size)."""
    import torch

    torch.set_num_threads(request["threads"])
    torch.set_num_interop_threads(1)
    import transformers

    torch_dtype = torch.bfloat16 if request["dtype"] == "bf16" else torch.float32
    start = time.perf_counter()
    model, source_dtypes = load_model(request["model"], torch_dtype)
    load_s = time.perf_counter() - start
    notes = []
    if source_dtypes:
        notes.append(f"GGUF tensors dequantized by transformers to {request['dtype']}")
    start = time.perf_counter()
    with torch.inference_mode():
        runner, extension = apply_backend(model, request, torch_dtype, notes)
        if request["backend"] != "eager":
            warm_up(runner, request["batch"], request["context"])
    if request["backend"] in ("compile", "zentorch"):
        torch._dynamo.config.error_on_recompile = True
    optimize_s = time.perf_counter() - start
    ready = {
        "torch": public_version(torch.__version__),
        "transformers": transformers.__version__,
        "extension": extension,
        "backend": request["backend"],
        "dtype": request["dtype"],
        "threads": torch.get_num_threads(),
        "source_dtypes": source_dtypes,
        "load_s": round(load_s, 3),
        "optimize_s": round(optimize_s, 3),
        "notes": notes,
    }
    return runner, ready, model.config.vocab_size


def check_forward(request, batch, cached, context, vocab):
    """Checks a forward request against the batch, the cache and the vocabulary; returns (ids, pos)."""
    ids, pos = request.get("ids"), request.get("pos")
    if not isinstance(pos, int) or isinstance(pos, bool):
        raise WorkerError(f"forward 'pos' must be an integer, got {pos!r}")
    if pos != cached:
        raise WorkerError(f"forward at pos {pos} but {cached} tokens are cached")
    if not isinstance(ids, list) or len(ids) != batch:
        raise WorkerError(f"forward 'ids' must hold {batch} sequences")
    n = len(ids[0]) if isinstance(ids[0], list) else 0
    if n == 0 or any(not isinstance(seq, list) or len(seq) != n for seq in ids):
        raise WorkerError("forward 'ids' must be non-empty sequences of equal length")
    if any(not isinstance(t, int) or isinstance(t, bool) for seq in ids for t in seq):
        raise WorkerError("forward 'ids' must be integers")
    if any(t < 0 or t >= vocab for seq in ids for t in seq):
        raise WorkerError(f"forward 'ids' must lie in 0..{vocab - 1}, the model's vocabulary")
    if pos + n > context:
        raise WorkerError(f"forward of {n} tokens at pos {pos} exceeds the context of {context}")
    return ids, pos


def serve(runner, batch, context, vocab):
    """Answers requests from stdin until EOF, under inference mode as the warm-up ran (the
    caches are inference tensors: resetting them in place needs it too)."""
    import torch

    cached = 0
    with torch.inference_mode():
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                try:
                    request = json.loads(line)
                except json.JSONDecodeError as e:
                    raise WorkerError(f"request is not JSON: {e}") from e
                op = request.get("op") if isinstance(request, dict) else None
                if op == "reset":
                    runner.reset()
                    cached = 0
                    send({"ok": True})
                elif op == "forward":
                    ids, pos = check_forward(request, batch, cached, context, vocab)
                    next_ids = runner.forward(ids, pos)
                    cached = pos + len(ids[0])
                    send({"next": next_ids})
                else:
                    raise WorkerError(f"unknown op {op!r}: expected 'reset' or 'forward'")
            except WorkerError as e:
                send({"error": str(e)})
            except Exception as e:  # noqa: BLE001 - every failure must reach the Rust side as a line
                send({"error": f"{type(e).__name__}: {e}"})


def main():
    """Loads the model named by the first stdin line, then serves requests; returns the exit code."""
    line = sys.stdin.readline()
    if not line:
        return 0
    try:
        request = parse_load_request(line)
        runner, ready, vocab = load(request)
    except WorkerError as e:
        send({"error": str(e)})
        return 1
    except Exception as e:  # noqa: BLE001 - a load failure must reach the Rust side as a line
        send({"error": f"loading failed: {type(e).__name__}: {e}"})
        return 1
    send({"ready": ready})
    serve(runner, request["batch"], request["context"], vocab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
