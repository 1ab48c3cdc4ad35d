"""fa_jax vs plain PyTorch: the same MLP training step (forward, backprop, Adam), same sizes.

    pip install torch && python benchmarks/bench_vs_torch.py

Both sides: fp32 weights, the same matmul precision (``--precision float32|tf32|bf16``:
``jax.default_matmul_precision`` / ``torch.set_float32_matmul_precision``; bf16 runs the
torch step under ``torch.autocast``), one step per Python dispatch, median of repeats after
warm-up. fa_jax is also timed with DFA. Skipped with a message when torch is absent.
"""

import jax
from bench_rules import SIZES, bench
from timing import base_parser, environment, median_time, precision, write

TORCH_PRECISION = {"float32": "highest", "tf32": "high", "bf16": "medium"}


def torch_step_ms(torch, sizes, batch, repeats, prec):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    torch.set_float32_matmul_precision(TORCH_PRECISION[prec])
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(batch, sizes[0], device=dev)
    y = torch.randint(0, sizes[-1], (batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=(prec == "bf16")):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()
        return None

    return median_time(step, repeats=repeats) * 1e3, dev


def main():
    p = base_parser(__doc__.splitlines()[0], "benchmarks/results/bench_vs_torch.json")
    p.add_argument("--sizes", default=None, help="comma-separated from small, medium, large")
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping (pip install torch to run this benchmark)")
        return
    sizes = a.sizes.split(",") if a.sizes else (["small", "medium", "large"] if jax.default_backend() == "gpu"
                                                else ["small", "medium"])
    env = environment(a.precision)
    env["torch"] = torch.__version__
    env["torch_threads"] = torch.get_num_threads()
    print(f"device: {env['device_kind']} ({env['backend']}), jax {env['versions']['jax']}, torch {torch.__version__}, "
          f"precision {a.precision}")
    rows = []
    for s in sizes:
        layer_sizes, batch = SIZES[s]
        with precision(a.precision):
            jx = {r["rule"]: r["step_ms"] for r in bench(s, ["bp", "dfa"], a.repeats)}
        t_ms, dev = torch_step_ms(torch, layer_sizes, batch, a.repeats, a.precision)
        rows.append({"size": s, "layers": layer_sizes, "batch": batch, "torch_device": dev,
                     "torch_bp_ms": t_ms, "fa_jax_bp_ms": jx["bp"], "fa_jax_dfa_ms": jx["dfa"],
                     "bp_ratio": jx["bp"] / t_ms, "dfa_vs_torch_bp": jx["dfa"] / t_ms})
    print("| size | batch | torch BP ms | fa_jax BP ms | fa_jax DFA ms | fa_jax BP / torch | fa_jax DFA / torch BP |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['batch']} | {r['torch_bp_ms']:.3f} | {r['fa_jax_bp_ms']:.3f} | "
              f"{r['fa_jax_dfa_ms']:.3f} | {r['bp_ratio']:.2f}x | {r['dfa_vs_torch_bp']:.2f}x |")
    write(a.out, {"environment": env, "results": rows})


if __name__ == "__main__":
    main()
