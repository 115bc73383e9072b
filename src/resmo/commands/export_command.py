"""``resmo export RUN --encoder student|teacher``: weights for plain torchvision / timm models."""

from __future__ import annotations

import argparse

from resmo.commands.common import USER_ERRORS, add_run_argument, fail


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "export", help="export a backbone for plain torchvision / timm models or detectron2",
        description="Write the student or teacher backbone of a run as a plain state dict: torchvision "
        "ResNet keys (resnet18/50), timm ViT keys (vit_*), or resmo keys (resnet_small), plus a "
        ".json with how to build the model. See 'Using the pretrained encoder' in the README.",
    )
    add_run_argument(parser)
    parser.add_argument("--encoder", choices=("student", "teacher"), required=True, help="which backbone to export")
    parser.add_argument("--format", choices=("plain", "detectron2"), default="plain",
                        help="plain (default): torchvision / timm / resmo state dict (.pt); detectron2: the .pkl "
                        "detectron2's ResNet loads and the config fragment (.yaml) it needs: STRIDE_IN_1X1 False, "
                        "RGB pixel mean / std (resnet18/50 pretrained at 96 px or more)")
    parser.add_argument("--out", metavar="FILE", help="output file (default <run>/export/<encoder>-<backbone>.pt, "
                        "or <encoder>-<backbone>-detectron2.pkl)")


def kept_on_interrupt(args: argparse.Namespace) -> str:
    return "the export may be incomplete; run the command again to write it"


def run(args: argparse.Namespace) -> int:
    from resmo.export import export_encoder

    try:
        path, metadata = export_encoder(args.run, args.encoder, out=args.out, config=args.config,
                                        format=args.format)
    except USER_ERRORS as error:
        return fail("resmo export", error)
    build = metadata["build"]
    print(f"exported the {args.encoder} {metadata['backbone']} ({build['format']} format) to {path}")
    print(f"how to build the model: {path.with_suffix('.json')}")
    if build.get("note"):
        print(f"note: {build['note']}")
    return 0
