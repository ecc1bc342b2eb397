"""Layer tables in the seeds' style (seeds/000 figures 1.1 and 2.2), with cs231n accounting.

One row per *stage*: a conv, fc, pooling, global-pool, flatten or residual layer, with the
element-wise layers after it (activation, batch norm, maxout, dropout) folded into the row's
``activation`` column, as the seeds print ``CONV5-16 [32x32x16] ... activation: ReLU``.

* ``weights``: conv kernels and fc matrices (``(F*F*D_in)*N``, the seeds' "weights");
  ``biases``: their biases; ``other``: batch-norm gamma/beta and PReLU slopes.
* Activation memory (seeds/004, the VGGNet example): the values of every stage's output
  volume plus the input, times 4 bytes per float, times 2 for the backward pass
  ("only forward! ~*2 for bwd"). In-place element-wise results are not counted separately,
  nor is a maxout layer's k-times wider pre-activation.
* FLOPs: ``2 x`` the multiply-accumulates of conv and fc layers
  (conv: ``F*F*D_in * D_out * W_out*H_out``; fc: ``n_in * n_out``) and of recurrent layers
  (``T * G*N * (features + N)`` for T rows, G gates (LSTM 4, GRU 3), N units); other layers
  are not counted.
"""

from __future__ import annotations

import math

from cnnlab.models.build import LayerInfo, Network, volume
from cnnlab.models.spec import LINEAR_KINDS, RECURRENT_KINDS, STAGE_KINDS  # each kind's summary rule: its LayerKind

BYTES_PER_VALUE = 4


def _label(info: LayerInfo) -> str:
    spec = info.spec
    if spec.kind == "fc":
        return f"FC-{info.out_shape[0] // info.pieces}"
    if spec.kind == "res":
        return "RES (+ input)"
    return spec.token.upper()


def _row(label: str, shape, depth: int) -> dict:
    return {"layer": label, "output": volume(shape), "shape": list(shape), "weights": 0, "biases": 0,
            "other": 0, "activation": [], "flops": 0, "depth": depth, "formula": ""}


def _params_into(row: dict, info: LayerInfo) -> None:
    module = info.module
    if info.spec.kind in LINEAR_KINDS:
        row["weights"] += module.weight.numel()
        row["biases"] += module.bias.numel() if module.bias is not None else 0
        per_output = module.weight[0].numel()  # F*F*D_in or n_in multiply-accumulates
        w = module.weight.shape
        fan = "*".join(map(str, (*w[2:], w[1]))) if len(w) == 4 else str(w[1])
        # the seeds' "(5*5*3)*16 = 1200"; fc inputs are written as the volume they flatten
        if len(w) == 2 and len(info.in_shape) == 3:
            fan = f"{info.in_shape[2]}*{info.in_shape[1]}*{info.in_shape[0]}"
        row["formula"] = f"({fan})*{w[0]}"
        row["flops"] += 2 * per_output * math.prod(info.out_shape)
    elif info.spec.kind in RECURRENT_KINDS:  # G*N x (features + N) weights, applied at every row
        gates = module.weight_ih.shape[0]
        row["weights"] += module.weight_ih.numel() + module.weight_hh.numel()
        row["biases"] += module.bias_ih.numel() + module.bias_hh.numel()
        row["formula"] = f"{gates // module.units}*{module.units}*({module.features}+{module.units})"
        row["flops"] += 2 * info.in_shape[1] * gates * (module.features + module.units)
    else:
        row["other"] += sum(p.numel() for p in module.parameters())


def _rows(infos: list[LayerInfo], depth: int, current: dict | None, rows: list[dict]) -> dict | None:
    for info in infos:
        if info.spec.kind == "res":
            _rows(info.children, depth + 1, None, rows)
            current = _row(_label(info), info.out_shape, depth)
            rows.append(current)
        elif info.spec.kind in STAGE_KINDS or current is None:
            current = _row(_label(info), info.out_shape, depth)
            if info.spec.kind == "pool":
                current["activation"].append(f"{info.spec.params.op}-pooling")
            rows.append(current)
            _params_into(current, info)
        else:
            current["activation"].append(info.spec.token)
            current["output"], current["shape"] = volume(info.out_shape), list(info.out_shape)
            _params_into(current, info)
        if info.spec.kind == "fc" and info.activation == "softmax":
            current["activation"].append("softmax (in the loss)")
    return current


def summarize(model: Network, batch: int = 1) -> dict:
    """The table of ``model`` (a built :class:`Network`) as plain data."""
    rows = [_row("INPUT", model.input_shape, 0)]
    _rows(model.infos, 0, rows[0], rows)
    for row in rows:
        row["activation"] = ", ".join(row["activation"])
    values = sum(math.prod(r["shape"]) for r in rows)
    totals = {k: sum(r[k] for r in rows) for k in ("weights", "biases", "other", "flops")}
    per_image = BYTES_PER_VALUE * values * 2
    return {
        "arch": model.arch_name or model.spec,
        "spec": model.spec,
        "input": volume(model.input_shape),
        "classes": model.num_classes,
        "batch": batch,
        "rows": rows,
        "totals": {**totals, "params": totals["weights"] + totals["biases"] + totals["other"]},
        "activation_values_per_image": values,
        "activation_bytes_per_image": per_image,
        "activation_bytes_per_batch": per_image * batch,
        "param_bytes": BYTES_PER_VALUE * (totals["weights"] + totals["biases"] + totals["other"]),
        "flops_per_image": totals["flops"],
        "flops_per_batch": totals["flops"] * batch,
    }


def _human(n: float, unit: str = "B") -> str:
    for prefix in ("", "K", "M", "G", "T"):
        if abs(n) < 1024 or prefix == "T":
            return f"{n:.0f} {prefix}{unit}" if prefix == "" else f"{n:.1f} {prefix}i{unit}"
        n /= 1024
    return f"{n} {unit}"


def format_summary(s: dict) -> str:
    """The table as text, volumes W x H x D like the seeds."""
    header = ("layer", "output", "weights", "biases", "other", "activation", "FLOPs", "weights as")
    table = [header] + [
        ("  " * r["depth"] + r["layer"], r["output"], f"{r['weights']:,}", f"{r['biases']:,}",
         f"{r['other']:,}", r["activation"], f"{r['flops']:,}", r["formula"]) for r in s["rows"]]
    t = s["totals"]
    table.append(("TOTAL", "", f"{t['weights']:,}", f"{t['biases']:,}", f"{t['other']:,}", "", f"{t['flops']:,}", ""))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {2, 3, 4, 6}
    lines = [f"{s['arch']}: input {s['input']}, {s['classes']} classes"]
    if s["arch"] != s["spec"]:
        lines.append(f"spec: {s['spec']}")
    for i, row in enumerate(table):
        lines.append("  ".join(c.rjust(w) if j in right else c.ljust(w)
                               for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0 or i == len(table) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        f"params: {t['params']:,} ({t['weights']:,} weights + {t['biases']:,} biases + {t['other']:,} other), "
        f"{_human(s['param_bytes'])} as float32",
        f"activation memory (4 bytes x (forward + backward)): {s['activation_values_per_image']:,} values, "
        f"{_human(s['activation_bytes_per_image'])} per image, {_human(s['activation_bytes_per_batch'])} "
        f"per batch of {s['batch']}",
        f"FLOPs (2 x multiply-accumulates of conv/fc/recurrent): {s['flops_per_image']:,} per image, "
        f"{s['flops_per_batch']:,} per batch of {s['batch']}",
    ]
    return "\n".join(lines)
