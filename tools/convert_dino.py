#!/usr/bin/env python3
"""Convert a DINO checkpoint (a PyTorch pickle) to safetensors for tessel's UnSegGNet.

tessel never downloads weights and does not read pickles. Get the checkpoint yourself from the
DINO authors (github.com/facebookresearch/dino, "Pretrained models": ViT-S/8), e.g.

  dino_deitsmall8_pretrain_full_checkpoint.pth  full training checkpoint, holds 'student' and
                                                'teacher'; UnSegGNet uses the student (default)
  dino_deitsmall8_pretrain.pth                  backbone only (the teacher's weights)

then run, with PyTorch installed (side tooling only; tessel itself needs no Python):

  python3 tools/convert_dino.py dino_deitsmall8_pretrain_full_checkpoint.pth vits8_student.safetensors
  python3 tools/convert_dino.py dino_deitsmall8_pretrain_full_checkpoint.pth vits8_teacher.safetensors --network teacher
  python3 tools/convert_dino.py dino_deitsmall8_pretrain.pth vits8_teacher.safetensors

The prefixes 'module.' and 'backbone.' are stripped, the projection head ('head.*') is dropped,
and tensors are stored as float32 (--dtype f16 / bf16 halves the file; tessel computes in fp32
either way). The script checks the 150 tensors (21,670,272 parameters) of ViT-S/8 unless
--any-vit is given (e.g. DINOv2 ViT-S/14 state dicts, converted the same way).
"""
import argparse
import sys

import torch


def backbone_state(ckpt, network):
    if isinstance(ckpt, dict) and network in ckpt and isinstance(ckpt[network], dict):
        return ckpt[network]
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        return ckpt["state_dict"]
    if isinstance(ckpt, dict) and all(torch.is_tensor(v) for v in ckpt.values()):
        return ckpt
    raise SystemExit(f"convert_dino: no '{network}' state dict in the checkpoint (keys: {list(ckpt)[:10]})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--network", choices=["student", "teacher"], default="student",
                    help="which network of a full DINO checkpoint (default: student, as UnSegGNet)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--any-vit", action="store_true", help="skip the ViT-S/8 name and shape check")
    args = ap.parse_args()

    ckpt = torch.load(args.checkpoint, map_location="cpu")
    state = backbone_state(ckpt, args.network)
    out = {}
    for name, t in state.items():
        n = name
        changed = True
        while changed:
            changed = False
            for p in ("module.", "backbone."):
                if n.startswith(p):
                    n, changed = n[len(p):], True
        if n.startswith("head."):
            continue
        dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
        out[n] = t.detach().to(dt).contiguous()

    if not args.any_vit:
        d, blocks = 384, 12
        want = {"cls_token": (1, 1, d), "pos_embed": (1, 785, d), "patch_embed.proj.weight": (d, 3, 8, 8),
                "patch_embed.proj.bias": (d,), "norm.weight": (d,), "norm.bias": (d,)}
        for i in range(blocks):
            b = f"blocks.{i}."
            want.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                         b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                         b + "norm2.weight": (d,), b + "norm2.bias": (d,), b + "mlp.fc1.weight": (4 * d, d),
                         b + "mlp.fc1.bias": (4 * d,), b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,)})
        missing = [k for k in want if k not in out]
        wrong = [f"{k} {tuple(out[k].shape)} != {v}" for k, v in want.items() if k in out and tuple(out[k].shape) != v]
        extra = [k for k in out if k not in want]
        if missing or wrong or extra:
            sys.exit(f"convert_dino: not a DINO ViT-S/8 backbone (use --any-vit): missing {missing[:5]}, "
                     f"wrong shapes {wrong[:5]}, unexpected {extra[:5]}")
        assert sum(t.numel() for t in out.values()) == 21_670_272

    try:
        from safetensors.torch import save_file
        save_file(out, args.output, metadata={"source": args.checkpoint, "network": args.network})
    except ImportError:  # the format is simple enough to write by hand
        import json, struct
        header, blobs, off = {}, [], 0
        names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
        for k, t in out.items():
            raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
            header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
            blobs.append(raw)
            off += len(raw)
        h = json.dumps(header).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(args.output, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
    print(f"convert_dino: wrote {len(out)} tensors to {args.output}")


if __name__ == "__main__":
    main()
