# idlewatcher-bridge — two commands for a newcomer: `make run` and `make test`.
# Both install and start what is missing (Debian packages, dockerd, mosquitto), idempotently.

SWIFT        ?= swift
CONFIG       ?= config/idlewatcher-bridge.yaml
LOG_LEVEL    ?= info
PREFIX       ?= /usr/local
DESTDIR      ?=
SYSCONFDIR   ?= /etc
BIN          := .build/debug/idlewatcher-bridge
RELEASE_BIN  := .build/release/idlewatcher-bridge

.PHONY: all build release run test unit-test simulator-test deps engine broker demo test-image \
        check-config bench format clean install uninstall

all: build

## Packages: libmosquitto, libcurl, mosquitto and its clients, Docker, busybox for the test image.
deps:
	@scripts/ensure-deps.sh

## A Docker engine answering on /var/run/docker.sock (started by hand where there is no systemd).
engine: deps
	@scripts/ensure-dockerd.sh

## A local mosquitto on 127.0.0.1:1883 for `make run` (the tests start their own brokers).
broker: deps
	@scripts/ensure-broker.sh

## The tiny busybox image the tests and the demo use (built locally: no registry needed).
test-image: engine
	@scripts/ensure-test-image.sh

## A container to play with: idlewatcher-demo.
demo: test-image
	@docker inspect idlewatcher-demo >/dev/null 2>&1 || \
	  docker run -d --name idlewatcher-demo --network none idlewatcher-test/busybox:latest /bin/sleep 1000000000 >/dev/null
	@echo "demo container: idlewatcher-demo"

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: build broker engine demo
	$(BIN) --config $(CONFIG) --log-level $(LOG_LEVEL)

check-config: build
	$(BIN) check-config --config $(CONFIG)

## Everything: unit tests, the Proxmox simulator's self-check, and the end-to-end tests against
## real dockerd and mosquitto. Serial, because some tests restart the broker or dockerd.
test: deps engine test-image
	python3 tools/pve-simulator/test_pve_simulator.py
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build
