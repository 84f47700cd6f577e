"""`bnbench show RUN` as text: the run's lead lines (status, engine, config and its drift, tags, verdicts, what to
run next), each wrapped at "; " for the terminal's width, then a line per trial (`layout`: columns while they fit,
the least needed left out, then records) and a caption naming the columns shown. The data is `analysis.show`'s.
"""

import json

from bnbench.errors import BnbenchError
from bnbench.views.cells import number
from bnbench.views.layout import laid_out, wrap


def show_output(summary: dict, fmt: str, width: int) -> str:
    """What `bnbench show` prints for one run (see show.summary): text, or json with every field."""
    if fmt == "json":
        return json.dumps(summary, indent=2) + "\n"
    if fmt != "table":
        raise BnbenchError(f"--format {fmt}: unknown format; choose table or json")
    lines = [line for paragraph in _lead(summary) for line in wrap(paragraph, width, "", "  ", "; ")]
    if not summary["trials"]:  # the rows could not be read: `problem` says why
        return "\n".join(lines + ["trials: none readable"]) + "\n"
    return "\n".join(lines + [""] + _trials(summary["trials"], width)) + "\n"


def _lead(s: dict) -> list[str]:
    """The paragraphs above the trials: what the run is, its state, where its config came from, its verdicts."""
    ended = f", ended {s['ended']}" if s["ended"] else ""
    resumed = f", resumed {len(s['resumed'])}×" if s["resumed"] else ""
    damage = f", damaged: {s['damage']}" if s["damage"] else ""
    lead = [
        f"{s['experiment']} · run {s['run']}",
        f"status: {s['status']}{damage} (started {s['started']}{ended}{resumed})",
        f"engine: {s['engine'] or '?'} · device: {s['device'] or '?'} ({s['device_name'] or '?'})",
        f"checkpoints: {s['checkpoints']}",
        *([f"data: {s['data']}"] if "data" in s else []),
        f"config: {s['source'] or '(not recorded)'}: {s['source_state']}",
        f"overrides: {s['overrides'] or '(none)'}",
        "differs from the config file: " + ("; ".join(s["from_source"]) or "nowhere"),
    ]
    labels = [f"tags: {', '.join(s['tags'])}"] * bool(s["tags"]) + [f"note: {s['note']}"] * bool(s["note"])
    lead += [" · ".join(labels)] if labels else []
    if s["edited"]:
        lead.append(f"config.yaml edited since the run began: {'; '.join(s['edited'])} (as started -> as now)")
    lead += [f"verdict: {v}" for v in s["verdicts"]] + ([f"cannot compare: {s['problem']}"] if s["problem"] else [])
    return lead + ([f"{'repair' if s['damage'] else 'continue'} with: {s['next']}"] if s["next"] else [])


def _trials(trials: list[dict], width: int) -> list[str]:
    """A line per trial (its sweep values, progress, the numbers of its last finished epoch), the least needed
    columns left out while too wide, then the caption."""
    points = [k for k in trials[0] if "." in k]  # sweep paths are dotted
    header = [
        "variant",
        "seed",
        *points,
        "status",
        "epochs",
        "steps",
        "seconds",
        "train loss",
        "test loss",
        "test acc %",
        *(["val acc %"] if "val_acc" in trials[0] else []),
    ]
    rows = [
        [
            t["variant"],
            str(t["seed"]),
            *(str(t[p]) for p in points),
            t["status"],
            f"{t['epochs']}/{t['epochs_total']}",
            str(t["steps"]),
            number(t["seconds"], 1),
            number(t["train_loss"], 4),
            number(t["test_loss"], 4),
            number(t["test_acc"], 2),
            *([number(t["val_acc"], 2)] if "val_acc" in t else []),
        ]
        for t in trials
    ]
    right = {"seed", "epochs", "steps", "seconds", "train loss", "test loss", "test acc %", "val acc %"}
    drop = [["steps"], ["steps", "seconds"], ["steps", "seconds", "test loss"]]
    table, shown = laid_out(header, rows, width, drop, right)
    return table + wrap(_trials_caption(header, shown), width)


def _trials_caption(header: list[str], shown: list[str]) -> str:
    """What `show`'s columns mean, naming only those shown, and which were left out for the width."""
    counts = {"steps": "steps", "seconds": "wall seconds"}
    said = ["epochs finished of configured", *(words for name, words in counts.items() if name in shown)]
    left = [name for name in header if name not in shown]
    return (
        f"Per trial: {', '.join(said)}, and the numbers of its last finished epoch (train loss: mean mini-batch "
        f"loss of that epoch; test{', val' * ('val acc %' in shown)}: in eval mode)."
        + (f" Left out at this width: {', '.join(left)} (--format json has them)." if left else "")
    )
