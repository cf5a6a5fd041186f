#!/bin/sh
# Prints the package version of this checkout, from git describe, in a
# form dpkg and rpm both accept and order the same way:
#   at the tag v1.2.0                1.2.0
#   5 commits after v1.2.0           1.2.0+git5.abc1234
#   the tag v1.3.0-rc1               1.3.0~rc1 (before 1.3.0)
#   no tag yet, 153 commits          0.0.0~git153.abc1234 (before any tag)
#   uncommitted changes              the above, then .dirty
# Outside a git checkout it prints the VERSION file of a source tarball
# (make dist), else 0.0.0~unknown.
set -eu
cd "$(dirname "$0")/.."
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	cat VERSION 2>/dev/null || echo 0.0.0~unknown
	exit 0
fi
dirty=""
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=.dirty
if d=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	# vTAG-N-gHASH, where TAG may itself hold dashes (v1.3.0-rc1).
	hash=${d##*-g}
	rest=${d%-g*}
	n=${rest##*-}
	tag=$(printf '%s' "${rest%-*}" | sed -e 's/^v//' -e 's/-/~/g')
	if [ "$n" = 0 ]; then
		echo "$tag$dirty"
	else
		echo "$tag+git$n.$hash$dirty"
	fi
else
	echo "0.0.0~git$(git rev-list --count HEAD).$(git rev-parse --short=7 HEAD)$dirty"
fi
