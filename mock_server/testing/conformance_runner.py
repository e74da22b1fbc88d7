"""``wavespeed-mock conformance``: run the shipped conformance suite (pytest + hypothesis) against the fake or
a real WaveSpeed-compatible URL, with a cost guard and a drift report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mock_server.resources import data_dir

API_KEY_ENV = "WAVESPEED_API_KEY"
PROFILES = ("fake", "thorough", "paid")  # registered by conformance/conftest.py
NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED

DESCRIPTION = """\
Run the conformance suite: hypothesis properties generated from each endpoint's JSON Schema, checking that
valid requests are accepted and answered by schema-valid bodies, invalid ones get a 4xx error envelope, the
lifecycle only moves forward, outputs are images of the requested size and format, sync mode equals
submit-then-poll, auth is enforced, and a state machine of submits/polls/uploads/control actions stays
consistent.

Free probes (requests the API must reject, auth) run first; paid properties run cheapest endpoint first with
the cheapest parameters (one image, smallest size)."""

EPILOG = f"""\
targets:
  --target fake      (default) start the fake on a loopback port (progression "polls": nothing sleeps);
                     about a minute; --profile thorough for the deeper (~5 minute) scheduled run
  --target URL       e.g. https://api.wavespeed.ai; the API key comes from ${API_KEY_ENV}. Every accepted
                     submit counts against --budget (default 3); once spent, tests that would submit are
                     skipped. Try --dry-run first: it prints each request and the estimated cost.
                     With a small budget, --max-examples 1 spreads it over more properties.

properties (names for -k; endpoints by id, e.g. -k 'outputs and pro/text-to-image'):
  free:  invalid_request_is_rejected, malformed_body_is_rejected, missing_or_malformed_key_is_refused,
         unknown_key_is_refused, upload_round_trips
  paid:  valid_request_is_accepted, lifecycle_moves_forward_and_terminal_state_is_stable,
         outputs_are_images_of_the_requested_format_and_size, sync_mode_matches_submit_then_poll,
         api_state_machine

exit status: 0 all properties hold; 1 a violation (see the drift report at the end, and --report);
             2 usage error; 5 no test was selected (never reported as success).
Any other option is passed to pytest unchanged (e.g. -x, -v, --hypothesis-seed=N, --hypothesis-profile=NAME).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavespeed-mock conformance",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--target", default="fake", metavar="fake|URL", help="the API under test (default: fake)")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        metavar="N",
        help="at most N accepted (paid) predictions against a URL (default 3; the fake: unlimited)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be sent (method, path, body) and the estimated cost; send nothing",
    )
    parser.add_argument("--report", metavar="PATH", help="write the JSON drift report to PATH")
    parser.add_argument("--junitxml", metavar="PATH", help="write JUnit XML for CI to PATH")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        metavar="|".join(PROFILES),
        help="hypothesis profile: fake (default on the fake: 15 examples per property, about a "
        "minute), thorough (50 per property, for scheduled runs), paid (default on a URL: 3)",
    )
    parser.add_argument(
        "--max-examples", type=int, metavar="N", help="hypothesis examples per property, overriding the profile's"
    )
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPRESSION",
        help="only properties matching the pytest -k expression (e.g. 'invalid or auth')",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        metavar="SECONDS",
        help="URL target: first pause between polls, backing off 1.5x up to 8 s (default 1)",
    )
    parser.add_argument(
        "--poll-timeout", type=float, metavar="SECONDS", help="deadline for a prediction to finish (default 300)"
    )
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less pytest output")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more pytest output")
    return parser


def pytest_arguments(args: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    argv = [str(data_dir("conformance")), "-p", "no:cacheprovider", "--target", args.target]
    if args.budget is not None:
        argv += ["--budget", str(args.budget)]
    if args.dry_run:
        argv.append("--dry-run")
    if args.report:
        argv += ["--report", args.report]
    if args.junitxml:
        argv.append(f"--junitxml={args.junitxml}")
    if args.profile is not None:
        argv.append(f"--hypothesis-profile={args.profile}")
    if args.max_examples is not None:
        argv += ["--max-examples", str(args.max_examples)]
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.poll_interval is not None:
        argv += ["--poll-interval", str(args.poll_interval)]
    if args.poll_timeout is not None:
        argv += ["--poll-timeout", str(args.poll_timeout)]
    argv += ["-q"] * args.quiet + ["-v"] * args.verbose
    return argv + list(extra)


def main(argv: list[str]) -> int:
    """Run the suite; the pytest exit code (1 on any violation, 5 when nothing was selected)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.budget is not None and args.budget < 0:
        parser.error("--budget must be 0 or more")
    if args.max_examples is not None and args.max_examples < 1:
        parser.error("--max-examples must be at least 1")
    if args.target != "fake" and not args.target.startswith(("http://", "https://")):
        parser.error(f"--target must be 'fake' or an http(s) URL, not {args.target!r}")
    if args.target != "fake" and not args.dry_run and not os.environ.get(API_KEY_ENV):
        sys.stderr.write(
            f"wavespeed-mock conformance: --target {args.target} needs an API key in ${API_KEY_ENV} "
            "(or use --dry-run to see what would be sent)\n"
        )
        return 2
    try:
        import pytest
    except ImportError:  # pragma: no cover - the [conformance] extra is missing
        sys.stderr.write(
            "wavespeed-mock conformance needs pytest, hypothesis and hypothesis-jsonschema: "
            "pip install 'wavespeed-mock[conformance]'\n"
        )
        return 2
    code = int(pytest.main(pytest_arguments(args, extra)))
    if code == NO_TESTS:
        sys.stderr.write("wavespeed-mock conformance: no property was selected (check -k); this is not a pass\n")
    return code
