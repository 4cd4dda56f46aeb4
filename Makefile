# Servin: set-up, run and test on a Debian host (run as root).
PYTHON ?= python3
VENV := .venv
DEBS := runc conmon busybox-static docker-registry iproute2 iptables catatonit procps
# For the tests only: a static UDP echo server is compiled into a test image.
TEST_DEBS := gcc libc6-dev
SERVIND_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install deps venv run test unit bench clean

install: deps venv

# Install only the Debian packages that are missing, so a prepared host is not touched.
deps:
	@missing=""; for p in $(DEBS) $(TEST_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/servind $(SERVIND_ARGS)

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS) tests

unit: install
	$(VENV)/bin/pytest $(PYTEST_ARGS) tests/unit

# servind side by side with dockerd (bench/RESULTS.md); installs dockerd, hyperfine and wrk
# when missing. Takes about three minutes.
bench: install
	bench/deps.sh $(VENV)
	@# servind's bytecode as an installed package has it, also where PYTHONDONTWRITEBYTECODE is set.
	$(VENV)/bin/python -m compileall -q servin
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
