"""bnbench: does Batch Normalization help this network, how much, how surely, and how fast?

From Python (a notebook): `bnbench.run(config)`, `bnbench.load(path)`, `bnbench.runs(results)`,
`bnbench.compare(*paths)`; see bnbench.api and docs/api.md. They are imported when first used, so that the CLI
starts without pandas."""

_API = ("Comparison", "Run", "Tuned", "compare", "init", "load", "run", "runs", "tune")


def __getattr__(name: str):
    if name in _API:
        from bnbench import api

        return getattr(api, name)
    if name == "BnbenchError":
        from bnbench.errors import BnbenchError

        return BnbenchError
    raise AttributeError(f"module 'bnbench' has no attribute {name!r}")


__all__ = [*_API, "BnbenchError"]
