# idlewatcher-bridge — two commands for a newcomer: `make run` and `make test`.
# Both install and start what is missing (Debian packages, dockerd, the Podman service, mosquitto), idempotently.

SWIFT        ?= swift
CONFIG       ?= config/idlewatcher-bridge.yaml
LOG_LEVEL    ?= info
PREFIX       ?= /usr/local
DESTDIR      ?=
SYSCONFDIR   ?= /etc
BINDIR       ?= $(PREFIX)/bin
UNITDIR      ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR  ?= $(PREFIX)/lib/sysusers.d
IMAGE        ?= idlewatcher-bridge
BIN          := .build/debug/idlewatcher-bridge
RELEASE_BIN  := .build/release/idlewatcher-bridge
VERSION      := $(shell sed -n 's/^let bridgeVersion = "\(.*\)"$$/\1/p' Sources/idlewatcher-bridge/IdlewatcherBridge.swift)

.PHONY: pve-simulator all build release run test unit-test simulator-test deps engine podman rabbitmq broker demo test-image \
        check-config bench format format-check clean install uninstall image symbol-order

all: build

## Packages: libmosquitto, libcurl, mosquitto and its clients, Docker, Podman, busybox for the test image.
deps:
	@scripts/ensure-deps.sh

## A Docker engine answering on /var/run/docker.sock (started by hand where there is no systemd).
engine: deps
	@scripts/ensure-dockerd.sh

## A Podman API service answering on /run/podman/podman.sock (Debian's podman, installed if missing;
## started by hand where there is no systemd), with the busybox test image as
## localhost/idlewatcher-test/busybox:latest. docs/podman-notes.md has what it answers.
podman: deps
	@scripts/ensure-podman.sh

## RabbitMQ with its MQTT plugin on 127.0.0.1:1884 (MQTT 3.1.1): the second broker implementation
## the tests run against (docs/brokers.md).
rabbitmq: deps
	@scripts/ensure-rabbitmq.sh

## A local mosquitto on 127.0.0.1:1883 for `make run` (the tests start their own brokers).
broker: deps
	@scripts/ensure-broker.sh

## The tiny busybox image the tests and the demo use (built locally: no registry needed).
test-image: engine
	@scripts/ensure-test-image.sh

## A container to play with: idlewatcher-demo, in Docker and (where podman is installed) in Podman.
demo: test-image
	@docker inspect idlewatcher-demo >/dev/null 2>&1 || \
	  docker run -d --name idlewatcher-demo --network none idlewatcher-test/busybox:latest /bin/sleep 1000000000 >/dev/null
	@echo "demo container: idlewatcher-demo"
	@if command -v podman >/dev/null 2>&1; then \
	  if podman container exists idlewatcher-demo || \
	     podman run -d --name idlewatcher-demo --network none localhost/idlewatcher-test/busybox:latest \
	       /bin/sleep 1000000000 >/dev/null; then \
	    echo "demo container (podman): idlewatcher-demo"; \
	  else echo "no podman demo container (see above)"; fi; \
	fi

build: deps
	$(SWIFT) build

## The release binary links Swift's runtime statically (--static-swift-stdlib): about 1.3 MiB less
## RSS than with the runtime's shared libraries, and the image needs none of them (docs/performance.md).
## The rest is about the pages of the binary a running bridge touches (its RSS, docs/performance.md):
## - lld with DT_RELR (-z pack-relative-relocs, glibc >= 2.36): the PIE's 743 KiB of relative
##   relocations, all read at start-up, become 6 KiB;
## - -function-sections and scripts/symbol-order.txt (scripts/gen-symbol-order.sh, `make
##   symbol-order`): the functions a bridge runs sit together at the start of .text instead of
##   one here and there in every 64 KiB the kernel maps around a fault;
## - libstdc++ (the Swift runtime's C++) linked statically from the -L directory below: one
##   shared library (1.1 MiB RSS) less. Without libstdc++.a there, the shared one is used;
## - --no-export-dynamic: Swift's static runtime arguments export every symbol of the package's
##   own objects (-export-dynamic; the runtime's are excluded already), 6,000 names that nothing
##   looks up but ld.so searches (and pages in) for every symbol of the shared libraries.
STATIC_CXX_DIR := .build/static-libstdc++
RELEASE_FLAGS := --static-swift-stdlib \
	-Xswiftc -Xfrontend -Xswiftc -function-sections \
	-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic \
	-Xlinker --symbol-ordering-file=$(CURDIR)/scripts/symbol-order.txt -Xlinker --no-warn-symbol-ordering \
	-Xswiftc -L$(CURDIR)/$(STATIC_CXX_DIR)

release: deps
	@mkdir -p $(STATIC_CXX_DIR); a="$$(cc -print-file-name=libstdc++.a)"; \
	  if [ -f "$$a" ]; then ln -sfn "$$a" $(STATIC_CXX_DIR)/libstdc++.a; else rm -f $(STATIC_CXX_DIR)/libstdc++.a; fi
	$(SWIFT) build -c release $(RELEASE_FLAGS)

## Regenerates scripts/symbol-order.txt from a traced run of the release binary (a mosquitto of
## its own, the local dockerd, a `status` command): see scripts/gen-symbol-order.sh.
symbol-order: release engine
	@SWIFT='$(SWIFT)' RELEASE_FLAGS='$(RELEASE_FLAGS)' scripts/gen-symbol-order.sh

run: build broker engine podman demo
	$(BIN) --config $(CONFIG) --log-level $(LOG_LEVEL)

check-config: build
	$(BIN) check-config --config $(CONFIG)

## The Proxmox VE simulator the tests use, as a demo cluster: https://127.0.0.1:8006, 5 CTs and
## 3 VMs (one paused), pvestatd's 10 s lag (tools/pve-simulator/README.md says how to point a bridge at it;
## set `types: [lxc, qemu]` to see the VMs).
pve-simulator:
	python3 tools/pve-simulator/pve_simulator.py --port 8006 --cts 5 --vms 3 --vms-paused 1 --resources-lag 10 \
	  --ca-out /tmp/pve-simulator-ca.pem

## Everything: unit tests, the Proxmox simulator's self-check, and the end-to-end tests against
## real dockerd and mosquitto. Serial, because some tests restart the broker or dockerd.
## The deployment tests (Tests/DeploymentTests) run the image from `make image` alone, in compose
## and `make install` into a DESTDIR, its unit under systemd; here they must run
## (IDLEWATCHER_DEPLOYMENT_TESTS=1), a bare `swift test` skips them without an image.
test: deps engine podman rabbitmq test-image image
	scripts/check-format.sh
	python3 tools/pve-simulator/test_pve_simulator.py
	$(SWIFT) build --build-tests
	IDLEWATCHER_DEPLOYMENT_TESTS=1 $(SWIFT) test --skip-build --no-parallel

## Install (docs/install.md): the release binary to $(DESTDIR)$(BINDIR), the example configuration
## to $(DESTDIR)$(SYSCONFDIR)/idlewatcher-bridge/config.yaml (an existing one is kept), the systemd
## unit to $(DESTDIR)$(UNITDIR) and the `idlewatcher` user to $(DESTDIR)$(SYSUSERSDIR).
INSTALL_VARS = DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' SYSCONFDIR='$(SYSCONFDIR)' \
               UNITDIR='$(UNITDIR)' SYSUSERSDIR='$(SYSUSERSDIR)' RELEASE_BIN='$(RELEASE_BIN)'

install: release
	@$(INSTALL_VARS) scripts/install.sh install

uninstall:
	@$(INSTALL_VARS) scripts/install.sh uninstall

## The container image idlewatcher-bridge:latest and :$(VERSION), without a registry: the release
## binary and the shared libraries it loads, imported with `docker import` (scripts/build-image.sh).
## Where a registry is reachable, deploy/docker/Dockerfile builds the same image.
image: release engine
	@IMAGE='$(IMAGE)' VERSION='$(VERSION)' RELEASE_BIN='$(RELEASE_BIN)' scripts/build-image.sh

## Benchmarks (docs/performance.md): the release binary against the real dockerd, a mosquitto of
## its own and the Proxmox simulator; prints one table, writes bench/results.json,
## docs/performance-latency.png and the latest table into docs/performance.md (scratch output:
## bench/out/). About 27 minutes; BENCH_QUICK=1 shortens the Proxmox run to 1 minute. matplotlib
## draws the plot (installed with pip if missing; without it the PNG is drawn unlabelled).
bench: release test-image image
	@python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib 2>/dev/null || \
	  echo "matplotlib could not be installed: the plot is drawn without labels"
	python3 bench/bench.py

format:
	$(SWIFT) format --in-place --configuration .swift-format --recursive Sources Tests Package.swift

## Every Swift file as `make format` writes it (run first by `make test`).
format-check:
	@scripts/check-format.sh

clean:
	rm -rf .build
