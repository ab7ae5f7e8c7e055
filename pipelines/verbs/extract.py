"""``zsgm extract``: a benchmark's raw images → a cached FeatureSet of backbone features.

The flags' defaults are the typed dataclasses' (one copy): :class:`~extract.job.ExtractRequest` (the job),
:class:`~extract.extractor.EngineConfig` (batching, workers, shards, decoding) and
:class:`~extract.scratch.ScratchConfig` (``--scratch`` training).
"""
from __future__ import annotations

import argparse

from zsgm.extract.extractor import BAD_IMAGE_POLICIES, EngineConfig
from zsgm.extract.gpu_decode import DECODERS
from zsgm.extract.job import DTYPES, ExtractRequest
from zsgm.extract.scratch import SCRATCH_CLASSES, ScratchConfig

HELP = "raw benchmark images -> cached backbone features (pretrained or --scratch); resumable"
R, E, S = ExtractRequest, EngineConfig(), ScratchConfig()  # the defaults, from the one place that declares them


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True, help="timm model name, optionally name.tag (see `zsgm backbones`)")
    p.add_argument("--data", required=True, help="dataset: apy awa1 awa2 cub cub_sent flo sun")
    p.add_argument("--data-root", help="folder holding the dataset folders (CUB/, FLO/ ...); "
                                       "default $ZSGM_DATA, then <project>/data")
    p.add_argument("--classes", help="comma-separated class names or number prefixes (e.g. 001,004): "
                                     "extract only these classes of the root")
    p.add_argument("--weights", help="checkpoint file (.safetensors/.pth/.bin); default: weights/<backbone>.*, "
                                     "packaged weights, timm's hub cache, else timm downloads it (unless --offline)")
    p.add_argument("--offline", action="store_true", help="never download weights (as HF_HUB_OFFLINE=1): a "
                                                          "checkpoint that is not local stops the run, naming the file")
    p.add_argument("--scratch", action="store_true", help="train the backbone on the seen classes' trainval "
                                                          "images first, then extract with it")
    p.add_argument("--random-init", action="store_true", help="random weights (timing and plumbing only)")
    p.add_argument("--out", help="output FeatureSet; default "
                                 "data/features/<data>/<backbone>[_scratch[_train]].safetensors")
    p.add_argument("--img-size", type=int, default=R.img_size,
                   help="input size (default: the backbone's pretrained config)")
    p.add_argument("--dtype", default=R.dtype, choices=list(DTYPES), help="stored feature dtype (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=E.batch_size, help="images per batch (default %(default)s)")
    p.add_argument("--workers", type=int, default=E.workers,
                   help="DataLoader workers (-1: all cores but one, at most 16; default %(default)s)")
    p.add_argument("--device", default=R.device, help="auto | cpu | cuda[:N] (default %(default)s)")
    p.add_argument("--shard-size", type=int, default=E.shard_size,
                   help="images per resumable shard (default %(default)s)")
    p.add_argument("--on-bad-image", default=E.on_bad_image, choices=BAD_IMAGE_POLICIES,
                   help="an unreadable image stops the run (fail) or is left out and listed (skip); "
                        "default %(default)s")
    p.add_argument("--fast-decode", action="store_true",
                   help="let libjpeg decode large JPEGs at reduced scale (faster; features differ slightly)")
    p.add_argument("--decode", default=E.decode, choices=DECODERS,
                   help="where JPEGs are decoded and resized: PIL in the DataLoader workers, or nvJPEG on the GPU "
                        "(auto: gpu on CUDA, else pil; features differ from PIL's by a grey level or so)")
    p.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("--scratch training")
    g.add_argument("--epochs", type=int, default=S.epochs, help="default %(default)s")
    g.add_argument("--train-batch-size", type=int, default=S.batch_size, help="default %(default)s")
    g.add_argument("--lr", type=float, default=S.lr, help="default %(default)s")
    g.add_argument("--weight-decay", type=float, default=S.weight_decay, help="default %(default)s")
    g.add_argument("--opt", default=S.opt, help="timm optimizer name (default %(default)s)")
    g.add_argument("--sched", default=S.sched, help="timm scheduler name (default %(default)s)")
    g.add_argument("--seed", type=int, default=S.seed, help="default %(default)s")
    g.add_argument("--scratch-classes", default=S.classes, choices=SCRATCH_CLASSES,
                   help="the seen classes the backbone trains on: trainval = all of them (the validation classes "
                        "too, so validation selection on these features is optimistic; records say "
                        "selection_saw_val_classes) or train = the xlsa17 training classes only (the validation "
                        "classes left out: selection without leak); default %(default)s")


def run(args: argparse.Namespace) -> int:
    from zsgm.pipelines.params import check_extract_args

    check_extract_args(args)  # every number and the device, before an image is listed or a model built
    from zsgm.core.logs import show_progress
    from zsgm.extract.job import run as run_job

    import os

    kill = os.environ.get("ZSGM_TEST_KILL_AFTER_SHARDS")  # test hook: a real SIGKILL mid-run
    eng = EngineConfig(batch_size=args.batch_size, workers=args.workers, shard_size=args.shard_size,
                       on_bad_image=args.on_bad_image, progress=show_progress(not args.no_progress), decode=args.decode,
                       kill_after_shards=int(kill) if kill else None)
    if args.fast_decode:
        eng.draft = -1  # resolved to the transform's resize size by the job
    train = ScratchConfig(epochs=args.epochs, batch_size=args.train_batch_size, lr=args.lr,
                          weight_decay=args.weight_decay, opt=args.opt, sched=args.sched, seed=args.seed,
                          img_size=args.img_size, workers=args.workers, classes=args.scratch_classes)
    req = ExtractRequest(data=args.data, backbone=args.backbone, data_root=args.data_root, weights=args.weights,
                         scratch=args.scratch, random_init=args.random_init, offline=args.offline, out=args.out, img_size=args.img_size,
                         dtype=args.dtype, force=args.force,
                         classes=args.classes.split(",") if args.classes else None, device=args.device, engine=eng, train=train)
    out = run_job(req)
    if int(os.environ.get("RANK", "0")) == 0:
        print(out)
    return 0
