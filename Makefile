# `make run` and `make test` each build .venv on first use (only python3 is needed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config.example.toml
# `make run PORT=8081`: serve on another port (a loopback public_url follows); empty: the config's.
PORT   ?=

# The paid pass of `make test` runs the files about shares, claims, orders, SMS, thanks, revokes,
# fulfilment, reminders, surprises, draws and concurrency (about 2.5 minutes on 2 cores): the
# pay tests set wechatpay mode themselves, and the rest (config,
# storage, forms, the WeChat and SMS clients, the CLI on its own shop, Chromium) does not share.
# `make test PAID_TESTS=` runs the whole suite paid.
PAID_TESTS ?= $(addprefix tests/test_,$(addsuffix .py,chat_share chat_order claim_web \
	order_sms thanks_revoke fulfilment reminders surprise draws draw_workers chat_concurrency \
	mobile_claims share_status wechat_pushes metrics workers browser_new_ways callback properties \
	swap greeting_media browser_personal themes))

# The paid story again with a merchant of WeChat Pay's platform certificates instead of its public
# key (GIFTBOT_TEST_WECHATPAY_VERIFY=certificates, tests/fakes/wechatpay.py): about 30 seconds.
CERT_TESTS ?= tests/test_payments.py tests/test_pay_notify.py

# Test files run side by side in two processes (pytest-xdist; a file stays in one process, so
# its module fixtures and artifacts are its own), the longest first (tests/conftest.py's
# LONGEST_FIRST). `make test PYTEST_JOBS=` runs them one by one.
PYTEST_JOBS ?= -n 2 --dist loadfile --no-loadscope-reorder

# The suite's temporary files, SQLite databases among them, in memory where the machine has
# /dev/shm: the tests are about behaviour, not the disk, and SQLite's wait for the disk at
# every commit (synchronous=FULL, kept in the bot) was most of their idle time. PostgreSQL's
# test sessions likewise commit without waiting (tests/conftest.py). `make test TEST_ENV=`: on disk.
TEST_ENV ?= $(if $(wildcard /dev/shm/.),TMPDIR=/dev/shm)

.PHONY: run test lint format worker bench clean lock mutate

# Exactly the versions CI tested, each checked against its hash (requirements.lock), then the
# project itself on top without touching them.
$(STAMP): setup.cfg pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Renew requirements.lock after changing a dependency in setup.cfg (needs the network).
lock:
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip-tools
	.lock-venv/bin/pip-compile --quiet --extra dev --extra mutate --extra bench --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock setup.cfg
	rm -rf .lock-venv

run: $(STAMP)
	$(BIN)/python -m bot serve --config $(CONFIG) $(if $(PORT),--port $(PORT))

worker: $(STAMP)
	$(BIN)/python -m bot worker --config $(CONFIG)

# The suite as it is (free mode), then again in [payments] mode "wechatpay": every bot against
# the WeChat Pay stand-in, the giver paying after 确认 (tests/conftest.py, tests/paying.py);
# tests about free mode only are skipped there, each saying why. Then the paid story with
# platform certificates.
test: $(STAMP) lint
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_JOBS)
	$(TEST_ENV) GIFTBOT_TEST_PAYMENTS=wechatpay $(BIN)/pytest $(PYTEST_JOBS) $(PAID_TESTS)
	$(TEST_ENV) GIFTBOT_TEST_WECHATPAY_VERIFY=certificates $(BIN)/pytest $(PYTEST_JOBS) $(CERT_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every scenario on SQLite (and PostgreSQL when reachable), short runs: a few minutes.
# Longer, steadier numbers: make bench BENCH_ARGS="--duration 10 --warmup 2 --rounds 5"
BENCH_ARGS ?= --duration 3 --warmup 1 --rounds 3

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Mutation testing of the money, stock and exactly-once modules (tests/mutation/, docs/mutation.md):
# not part of `make test`. Niced, one job by default (the machine is shared); results are kept in
# .mutate/ and reused while the mutant and its tests stay the same. A first run takes about two
# hours on 2 cores; `make mutate MUTATE_ARGS="bot/money/payments.py --jobs 2"` runs one module,
# MUTATE_ARGS=--report prints the kept outcomes, MUTATE_BUDGET=60 gives each mutant more tests.
MUTATE_ARGS ?=

mutate: $(STAMP)
	nice -n 10 $(BIN)/python -m tests.mutation $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) data/*.db* *.egg-info .mutate
