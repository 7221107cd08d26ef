"""``python -m web``: serve the page and the API with uvicorn (127.0.0.1:8000 by default)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import secrets
import sys

from preprocess.core.extras import WEB, require, staging_features
from preprocess.core.version import add_version_argument

EPILOG = """\
examples:
  python -m web                                   # http://127.0.0.1:8000/ (this machine only)
  python -m web --port 8080 --weights weights/ched32_seqed64_ch9_seql20_block6.pth
  python -m web --host 0.0.0.0 --token SECRET     # shared server: every API call needs the token
API: /openapi.json (OpenAPI 3); the page is /.
"""


def build_parser() -> argparse.ArgumentParser:
    from staging.cli import add_model_options

    p = argparse.ArgumentParser(prog="python -m web", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: only this machine can connect)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="staging processes; jobs beyond that wait in the queue (default 1)")
    p.add_argument("--formats", default="all", metavar="LIST",
                   help="outputs offered for download, as inference.py --formats (default: all)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder for uploads and results (default: a temporary folder removed at exit)")
    p.add_argument("--max-upload-gb", type=float, default=4.0, help="largest accepted upload in GiB (default 4)")
    p.add_argument("--retention-min", type=float, default=60.0,
                   help="minutes after a job's last change before its files are deleted (default 60)")
    p.add_argument("--token", help="shared token required by the API (default: none on 127.0.0.1; a random one "
                                   "is generated and printed for any other --host)")
    add_model_options(p.add_argument_group("model (the same options as inference.py)"), stride=None)
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    require(WEB, *staging_features(backend=args.backend, formats=args.formats or ()))  # before anything starts
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    import uvicorn

    from staging.weights import WeightsError

    from .app import LOOPBACK_HOSTS, Settings, create_app

    loopback = _is_loopback(args.host)
    token = args.token
    if not loopback:
        print(f"WARNING: binding {args.host}: other machines can reach this service. Uploads are medical "
              "data: use it only on a trusted network, behind HTTPS (a reverse proxy).", file=sys.stderr)
        if not token:
            token = secrets.token_urlsafe(24)
            print(f"WARNING: no --token given; generated one. Open http://<this-host>:{args.port}/?token={token}",
                  file=sys.stderr)
    if args.workers < 1 or (args.stride is not None and args.stride < 1) or args.batch_size < 1:
        print("error: --workers, --stride and --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.threads < 0:
        print(f"error: --threads must be >= 0, got {args.threads}", file=sys.stderr)
        return 2
    from staging.outputs import parse_formats

    try:
        formats = parse_formats(args.formats)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = Settings(weights=args.weights, device=args.device, workers=args.workers, data_dir=args.data_dir,
                        max_upload_bytes=int(args.max_upload_gb * (1 << 30)), retention_s=args.retention_min * 60,
                        token=token, allowed_hosts=LOOPBACK_HOSTS if loopback else None, stride=args.stride,
                        formats=formats, model={k: getattr(args, k) for k in
                                                ("threads", "int8", "backend", "precision", "batch_size")})
    try:
        app = create_app(settings)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    w = app.state.weights
    print(f"weights: {w.description}")
    if w.demo:
        print("WARNING: DEMO weights trained on SIMULATED PSG: hypnograms are not meaningful for real recordings.")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"page: http://{shown}:{args.port}/   API description: http://{shown}:{args.port}/openapi.json")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
