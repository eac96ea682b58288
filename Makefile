# course-inventory: `make demo` runs the product end to end on the sandbox; `make test` runs every test.
.PHONY: demo test lint venv services bench clean

venv:
	@bash scripts/bootstrap.sh

services: venv
	@bash scripts/ensure_services.sh

lint: venv
	.venv/bin/ruff check .

test: services lint
	.venv/bin/python -m pytest

demo: services
	.venv/bin/python -m sandbox demo

bench: services
	.venv/bin/python -m bench.course_inventory

clean:
	rm -rf .venv .pytest_cache .ruff_cache
