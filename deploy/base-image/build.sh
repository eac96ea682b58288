#!/usr/bin/env bash
# Build local/python:3.11-bookworm (see Dockerfile here) from Debian's archive alone; needs root, debootstrap and a
# running Docker daemon. Then: docker build --build-arg BASE_IMAGE=local/python:3.11-bookworm -t course-inventory .
set -euo pipefail
cd "$(dirname "$0")"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTFS=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import - local/debian-bookworm:12
docker build --network host -t local/python:3.11-bookworm .
