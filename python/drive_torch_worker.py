"""Drives python/torch_worker.py through its line protocol, as the Rust side does, and times it.

Usage: <venv>/bin/python python/drive_torch_worker.py MODEL BACKEND DTYPE [--threads N] [--batch B]
       [--tokens T] [--repeats R] [--context C] [--prompt TEXT] [--direct]

Tokenizes the prompt with the model's own tokenizer (transformers, GGUF or folder), loads the
worker with the same interpreter, generates T greedy tokens R times with B equal sequences, and
prints the text, the median decode rate (tokens/s per sequence) and the median round trip of a
reset (the protocol's own cost where a reset does no work: eager, ipex). With --direct it also
loads the model in this process through the worker's own functions and times the same decode
steps without the protocol: the difference of the two median step times is the protocol's cost
per forward (meaningful on an idle machine only).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def tokenizer_for(model):
    """The model's own tokenizer."""
    from transformers import AutoTokenizer

    if os.path.isdir(model):
        return AutoTokenizer.from_pretrained(model)
    folder, name = os.path.split(os.path.abspath(model))
    return AutoTokenizer.from_pretrained(folder, gguf_file=name)


class Worker:
    """A running torch_worker.py child speaking the protocol over pipes."""

    def __init__(self, load_request):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_worker.py")
        env = dict(os.environ, OMP_NUM_THREADS=str(load_request["threads"]))
        with open(script, encoding="utf-8") as f:
            source = f.read()
        self.child = subprocess.Popen(
            [sys.executable, "-u", "-c", source],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.ready = self.ask(load_request)

    def ask(self, message):
        """Sends one line, returns the answer line as a dict."""
        self.child.stdin.write(json.dumps(message) + "\n")
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.child.wait()}")
        return json.loads(line)

    def close(self):
        """Closes stdin and returns the exit code."""
        self.child.stdin.close()
        return self.child.wait()


def generate(worker, prompt_ids, batch, tokens):
    """Greedy generation through the worker; returns (ids per sequence, prompt forward seconds,
    decode step seconds)."""
    answer = worker.ask({"op": "reset"})
    if answer != {"ok": True}:
        raise RuntimeError(answer)
    start = time.perf_counter()
    answer = worker.ask({"op": "forward", "ids": [prompt_ids] * batch, "pos": 0})
    prompt_s = time.perf_counter() - start
    if "next" not in answer:
        raise RuntimeError(answer)
    out = [[t] for t in answer["next"]]
    pos = len(prompt_ids)
    steps = []
    for _ in range(tokens - 1):
        start = time.perf_counter()
        answer = worker.ask({"op": "forward", "ids": [[seq[-1]] for seq in out], "pos": pos})
        steps.append(time.perf_counter() - start)
        if "next" not in answer:
            raise RuntimeError(answer)
        for seq, t in zip(out, answer["next"]):
            seq.append(t)
        pos += 1
    return out, prompt_s, steps


def generate_direct(runner, prompt_ids, batch, tokens):
    """Greedy generation calling the worker's runner in this process; returns decode step seconds."""
    import torch

    runner.reset()
    with torch.inference_mode():
        out = [[t] for t in runner.forward([prompt_ids] * batch, 0)]
        pos = len(prompt_ids)
        steps = []
        for _ in range(tokens - 1):
            start = time.perf_counter()
            next_ids = runner.forward([[seq[-1]] for seq in out], pos)
            steps.append(time.perf_counter() - start)
            for seq, t in zip(out, next_ids):
                seq.append(t)
            pos += 1
    return steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("backend")
    parser.add_argument("dtype")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--prompt", default="The capital of France is")
    parser.add_argument("--direct", action="store_true", help="also time the forwards in-process")
    args = parser.parse_args()
    tokenizer = tokenizer_for(args.model)
    prompt_ids = tokenizer(args.prompt, add_special_tokens=False)["input_ids"]
    request = {
        "model": os.path.abspath(args.model),
        "backend": args.backend,
        "dtype": args.dtype,
        "threads": args.threads,
        "batch": args.batch,
        "context": args.context,
    }
    start = time.perf_counter()
    worker = Worker(request)
    print(f"ready after {time.perf_counter() - start:.1f} s: {json.dumps(worker.ready)}")
    if "ready" not in worker.ready:
        sys.exit(1)
    rates, piped, prompts = [], [], []
    for _ in range(args.repeats):
        out, prompt_s, steps = generate(worker, prompt_ids, args.batch, args.tokens)
        prompts.append(prompt_s)
        rates.append(len(steps) / sum(steps))
        piped.extend(steps)
    for seq in out:
        print(f"text: {tokenizer.decode(seq)!r}")
    print(f"decode: median {statistics.median(rates):.1f} tok/s per sequence over {args.repeats} runs "
          f"(batch {args.batch}, {args.threads} threads); runs: {', '.join(f'{r:.1f}' for r in rates)}")
    print(f"prompt forward ({len(prompt_ids)} tokens) per run: {', '.join(f'{p * 1e3:.0f} ms' for p in prompts)}")
    trips = []
    for _ in range(200):
        start = time.perf_counter()
        worker.ask({"op": "reset"})
        trips.append(time.perf_counter() - start)
    print(f"protocol round trip (reset): median {statistics.median(trips) * 1e6:.0f} us over 200")
    print(f"bad pos: {worker.ask({'op': 'forward', 'ids': [[1]] * args.batch, 'pos': 999})}")
    print(f"exit code: {worker.close()}")
    if args.direct:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch_worker

        runner, _, _ = torch_worker.load(request)
        direct = []
        for _ in range(args.repeats):
            direct.extend(generate_direct(runner, prompt_ids, args.batch, args.tokens))
        piped_ms, direct_ms = statistics.median(piped) * 1e3, statistics.median(direct) * 1e3
        print(f"decode step: median {piped_ms:.2f} ms through the protocol, {direct_ms:.2f} ms in-process: "
              f"overhead {piped_ms - direct_ms:.2f} ms per forward")


if __name__ == "__main__":
    main()
