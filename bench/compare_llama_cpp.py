#!/usr/bin/env python3
"""Frontdesk's generation beside llama.cpp, on the same GGUF and the same
grounded prompts, in one run.

Runs `frontdesk bench` (which answers typical questions through the chat's
own path and writes every prompt it gave the model), then gives llama.cpp
(llama-cpp-python, built natively) exactly those prompts, and prints both
and their ratios side by side.

    python3 -m venv .venv-llama
    CMAKE_ARGS="-DGGML_NATIVE=ON" .venv-llama/bin/pip install llama-cpp-python
    cargo build --release
    .venv-llama/bin/python bench/compare_llama_cpp.py [--model FILE] [--runs 2] [--threads 2] [--rounds 3]

With --rounds N the two engines take turns N times and each ratio is the
median of the N rounds' ratios, so a slow spell on a shared machine lands
on one engine's round, not in every ratio.

llama.cpp's AMX weight repacking crashed (SIGILL) on one of our hosts, so
extra buffer types are off (`use_extra_bufts=False`) unless --extra-bufts.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def frontdesk(binary, model, runs, prompts_out):
    """Both variants' figures from `frontdesk bench` (Q8_0 copy, original)."""
    cmd = [binary, "bench", "--runs", str(runs), "--concurrency", "1",
           "--prompts-out", prompts_out]
    if model:
        cmd += ["--model", model]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    last = [l for l in out.splitlines() if l.startswith("[")][-1]
    return {v["variant"]: v["figures"] for v in json.loads(last)}


def llama_cpp(model, prompts, threads, extra_bufts):
    from llama_cpp import Llama

    kwargs = dict(model_path=model, n_ctx=2048, n_threads=threads,
                  n_threads_batch=threads, verbose=False)
    if not extra_bufts:
        kwargs["use_extra_bufts"] = False
    try:
        llm = Llama(**kwargs)
    except TypeError:  # an older llama-cpp-python without the option
        kwargs.pop("use_extra_bufts", None)
        llm = Llama(**kwargs)
    first, prompt_rates, decode_rates = [], [], []
    for p in prompts:
        llm.reset()  # no reuse of the previous prompt's cache, as in Frontdesk
        start = time.perf_counter()
        t_first, tokens = None, 0
        for chunk in llm.create_chat_completion(
                messages=p["messages"], max_tokens=p["max_tokens"],
                temperature=0.0, stream=True):
            delta = chunk["choices"][0].get("delta", {})
            if delta.get("content"):
                tokens += 1
                if t_first is None:
                    t_first = time.perf_counter() - start
        total = time.perf_counter() - start
        if t_first is None:
            continue
        # What the context holds now: the prompt and the reply's tokens.
        n_prompt = llm.n_tokens - tokens
        first.append(t_first)
        prompt_rates.append(n_prompt / t_first)
        if tokens > 1:
            decode_rates.append((tokens - 1) / (total - t_first))
    return {
        "first_token_ms_p50": 1000 * statistics.median(first),
        "prompt_tokens_per_s_p50": statistics.median(prompt_rates),
        "decode_tokens_per_s_p50": statistics.median(decode_rates),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--binary", default="target/release/frontdesk")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--extra-bufts", action="store_true")
    ap.add_argument("--rounds", type=int, default=1,
                    help="times the two engines take turns")
    args = ap.parse_args()

    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        prompts_path = os.path.join(tmp, "prompts.jsonl")
        for _ in range(args.rounds):
            ours = frontdesk(args.binary, args.model, args.runs, prompts_path)
            with open(prompts_path) as f:
                prompts = [json.loads(l) for l in f if l.strip()]
            theirs = llama_cpp(args.model, prompts, args.threads, args.extra_bufts)
            rounds.append((ours, theirs))

    rows = [
        ("prompt processing, tokens/s", "prompt_tokens_per_s_p50", True),
        ("decode, tokens/s", "decode_tokens_per_s_p50", True),
        ("first token, ms", "first_token_ms_p50", False),
    ]
    variants = [v for v in ("loaded", "original") if v in rounds[0][0]]

    def ratio(ours, theirs, v, key, higher_is_better):
        a, b = ours[v][key], theirs[key]
        return a / b if higher_is_better else b / a

    head = ["", "llama.cpp"] + [f"frontdesk {v}" for v in variants] \
        + [f"ratio {v}" for v in variants]
    print(f"{len(prompts)} prompts, {args.threads} threads, {args.model}, "
          f"{args.rounds} round(s) in turn (figures and ratios: medians)")
    print(" | ".join(head))
    median = statistics.median
    for name, key, higher_is_better in rows:
        cells = [name, f"{median(t[key] for _, t in rounds):.0f}"]
        cells += [f"{median(o[v][key] for o, _ in rounds):.0f}" for v in variants]
        for v in variants:
            each = [ratio(o, t, v, key, higher_is_better) for o, t in rounds]
            cell = f"{median(each):.2f}x"
            if len(each) > 1:
                cell += " (" + ", ".join(f"{r:.2f}" for r in each) + ")"
            cells.append(cell)
        print(" | ".join(cells))
    print("(ratio: Frontdesk's speed as a share of llama.cpp's; 1.00x is parity)")


if __name__ == "__main__":
    sys.exit(main())
