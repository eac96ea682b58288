# course-inventory: `make demo` runs the product end to end on the sandbox; `make test` runs every test.
.PHONY: demo test lint venv services bench clean lock

venv:
	@bash scripts/bootstrap.sh

services: venv
	@bash scripts/ensure_services.sh

lint: venv
	.venv/bin/ruff check .

test: services lint
	.venv/bin/python -m pytest -n 3 --dist worksteal

demo: services
	.venv/bin/python -m sandbox demo

bench: services
	.venv/bin/python -m bench.course_inventory

clean:
	rm -rf .venv .pytest_cache .ruff_cache

# Regenerate requirements.lock (every transitive runtime dependency, pinned with hashes; the image installs it)
# after changing requirements.txt.
lock: venv
	.venv/bin/uv pip compile requirements.txt --universal --python-version 3.11 --generate-hashes \
	    --custom-compile-command "make lock" --quiet -o requirements.lock
