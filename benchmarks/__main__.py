"""`python -m benchmarks NAME [args]`: run one benchmark (no NAME lists them)."""
import importlib
import sys

BENCHMARKS = {
    "digits": "benchmarks.digits",
    "mask_memory": "benchmarks.mask_memory",
    "global_magnitude": "benchmarks.global_magnitude",
    "graph_vs_torch_pruning": "benchmarks.graph_vs_torch_pruning",
    "hf_architectures": "benchmarks.hf_architectures",
    "minilm": "benchmarks.minilm",
    "linear_widths": "benchmarks.linear_widths",
    "readme": "benchmarks.readme",
    "llama_scale": "benchmarks.llama_scale",
    "smollm2_gqa": "benchmarks.smollm2_gqa",
    "smollm2_llm": "benchmarks.smollm2_llm",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print("usage: python -m benchmarks NAME [args]\nbenchmarks: " + ", ".join(BENCHMARKS))
        return 0 if len(sys.argv) < 2 else 2
    module = importlib.import_module(BENCHMARKS[sys.argv[1]])
    module.main(sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
