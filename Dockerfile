# DES: the stock `des` command in a small Debian image.
#
#   docker build -t des .
#   docker run --rm des --version
#
# Two stages: the Swift toolchain image builds a release `des` with Swift's own runtime linked
# in statically; a bookworm-slim image gets that one binary plus the C libraries it links,
# listed once in deploy/image/runtime-packages.txt. `make image-check` (scripts/image-check.sh)
# installs exactly that list into a bare Debian root without Docker and runs des there, as the
# user below: a library missing from the list fails it. See docs/deploy.md.

FROM swift:6.3-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The headers of the C libraries des links (the -dev twins of the runtime list).
COPY deploy/image/build-packages.txt /tmp/build-packages.txt
RUN apt-get update \
    && sed -e 's/#.*//' /tmp/build-packages.txt \
       | DEBIAN_FRONTEND=noninteractive xargs apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/build-packages.txt

WORKDIR /src
# The manifest first: the dependencies are fetched in a layer that only a change of
# Package.swift (or Package.resolved, when the checkout has one) rebuilds.
COPY Package.* ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; \
    else swift package resolve; fi
COPY . .
RUN swift build -c release --static-swift-stdlib --product des \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/des" /out/des

FROM debian:bookworm-slim

ARG DES_VERSION=0.1.0
LABEL org.opencontainers.image.title="des" \
      org.opencontainers.image.description="DES: packs small files from database catalogs into append-only container archives and serves them back by name" \
      org.opencontainers.image.version="${DES_VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Exactly the runtime packages of deploy/image/runtime-packages.txt (the image check installs the same).
COPY deploy/image/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
    && sed -e 's/#.*//' /tmp/runtime-packages.txt \
       | DEBIAN_FRONTEND=noninteractive xargs apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt

# A fixed non-root user (uid and gid 10001) owning the data directory, the working directory.
RUN groupadd --gid 10001 des \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/des --no-create-home \
       --shell /usr/sbin/nologin des \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/des /var/lib/des/configs

COPY --from=build /out/des /usr/local/bin/des
# The embedded default at the path `des` reads when neither --config nor $DES_CONFIG is
# given (configs/local.yaml of the working directory): SQLite catalog, containers on local
# disk under /var/lib/des/configs/des-data. A real deployment mounts its own config.
COPY configs/local.yaml /var/lib/des/configs/local.yaml

USER 10001:10001
WORKDIR /var/lib/des
# `des serve` (server.port; give --host 0.0.0.0 in a container, the default is 127.0.0.1).
EXPOSE 8080
ENTRYPOINT ["des"]
CMD ["--help"]
