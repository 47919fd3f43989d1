#!/bin/bash
# shellcheck disable=SC2015 # "A && B || die" is meant: die when any check fails
# xecr EC2 bootstrap: run from user-data (as root) to set up a machine-wide
# xecr with no hands on the machine.
#
#   bootstrap.sh --role-arn ARN (--registry-id ID | --registry HOST) --region REGION
#                [--external-id ID] [--docker-user USER]... [--source SOURCE [--sha256 HEX]]
#                [--root DIR] [--no-enable] [--reinstall]
#
# It installs xecr, writes /etc/xecr/config.toml, adds the registry to the
# credHelpers of root's Docker config (and of each --docker-user's, owned by
# that user) keeping everything else in it, installs the systemd unit
# xecr.service and enables and starts it. Running it again with the same
# arguments changes nothing; with other arguments it changes only what they
# change (and reloads or restarts the daemon).
#
# SOURCE, a local file or an https:// URL of one, is told apart by its name:
#   *.deb, *.rpm                 the package (dpkg/apt-get, dnf/rpm): /usr/bin/xecr
#   xecr-V-linux-ARCH.tar.gz     the executable bundle, unpacked into /opt/xecr
#   anything else                what pip installs into the venv /opt/xecr: a wheel,
#                                an sdist, a checkout or a spec (xecr==0.1.0; default xecr)
# --sha256 HEX checks the file (downloaded or local) before anything is installed.
# For the venv and the bundle, /usr/local/bin/xecr and docker-credential-xecr link into
# /opt/xecr/bin and the unit runs /usr/local/bin/xecr; for a package it runs /usr/bin/xecr.
#
# --root DIR writes everything under DIR instead of / and never calls
# systemctl (it only makes the multi-user.target.wants link): for image builds
# and tests. What it writes names no path under DIR: the venv's scripts and
# compiled files name /opt/xecr. A .deb or .rpm is unpacked into DIR (files
# only: no maintainer scripts, not recorded in the image's package database).
# XECR_BOOTSTRAP_SKIP_INSTALL=1 skips the install step; XECR_BOOTSTRAP_PIP_ARGS
# adds pip options (a mirror, --no-index...); XECR_BOOTSTRAP_PYTHON names the
# Python (3.11 or newer) to build the venv with.
#
# Exit status: 0 done, 1 failed, 2 wrong arguments.

set -euo pipefail
umask 022

PROG="xecr bootstrap"
USAGE="usage: bootstrap.sh --role-arn ARN (--registry-id ID | --registry HOST) --region REGION
       [--external-id ID] [--docker-user USER]... [--source SOURCE [--sha256 HEX]]
       [--root DIR] [--no-enable] [--reinstall]"

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s\n%s\n' "$PROG" "$*" "$USAGE" >&2; exit 2; }

ROLE_ARN="" REGISTRY_ID="" REGISTRY="" REGION="" EXTERNAL_ID="" ROOT="" SOURCE="xecr" SHA256=""
ENABLE=1 REINSTALL=0
DOCKER_USERS=()

value() { # OPTION ARGS...: the value after OPTION, or a usage error
    [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || usage_error "$1 needs a value"
    printf '%s' "$2"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --role-arn) ROLE_ARN=$(value "$@"); shift 2 ;;
        --registry-id) REGISTRY_ID=$(value "$@"); shift 2 ;;
        --registry) REGISTRY=$(value "$@"); shift 2 ;;
        --region) REGION=$(value "$@"); shift 2 ;;
        --external-id) EXTERNAL_ID=$(value "$@"); shift 2 ;;
        --docker-user) DOCKER_USERS+=("$(value "$@")"); shift 2 ;;
        --source) SOURCE=$(value "$@"); shift 2 ;;
        --sha256) SHA256=$(value "$@"); shift 2 ;;
        --root) ROOT=$(value "$@"); shift 2 ;;
        --no-enable) ENABLE=0; shift ;;
        --reinstall) REINSTALL=1; shift ;;
        -h | --help) printf '%s\n' "$USAGE"; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

# -- check the arguments (they go into a TOML file: only safe characters pass) --------

# The partitions, regions and ECR host names xecr serves (ecr_helper/registry.py and
# ecr_helper/config_schema.py; the README's "Registries xecr serves").
ARN_RE='^arn:(aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?):iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$'
REGION_RE='^(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov|us-iso|us-isob|eu-isoe|us-isof|eusc-de)-[a-z]+-[0-9]{1,2}$'
ID_RE='^[0-9]{12}$'
EXTERNAL_ID_RE='^[A-Za-z0-9_+=,.@:/-]{2,1224}$'
HOST_RE='^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$'
ECR_DOMAINS='amazonaws\.com|amazonaws\.com\.cn|on\.aws|on\.amazonwebservices\.com\.cn|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov|amazonaws\.eu'
ECR_HOST_RE="^([0-9]{12})\\.(dkr\\.ecr|dkr\\.ecr-fips|dkr-ecr|dkr-ecr-fips)\\.([a-z0-9-]+)\\.($ECR_DOMAINS)\$"
USER_RE='^[a-z_][a-z0-9_.-]{0,31}$'
SHA256_RE='^[0-9a-f]{64}$'

# partition_of REGION: the partition a valid region name belongs to.
partition_of() {
    case "$1" in
        us-gov-*) echo aws-us-gov ;;
        us-isob-*) echo aws-iso-b ;;
        us-isof-*) echo aws-iso-f ;;
        us-iso-*) echo aws-iso ;;
        eu-isoe-*) echo aws-iso-e ;;
        eusc-de-*) echo aws-eusc ;;
        cn-*) echo aws-cn ;;
        *) echo aws ;;
    esac
}

# partition_domain PARTITION: the domain of ECR's (IPv4) host names there.
partition_domain() {
    case "$1" in
        aws-cn) echo amazonaws.com.cn ;;
        aws-iso) echo c2s.ic.gov ;;
        aws-iso-b) echo sc2s.sgov.gov ;;
        aws-iso-e) echo cloud.adc-e.uk ;;
        aws-iso-f) echo csp.hci.ic.gov ;;
        aws-eusc) echo amazonaws.eu ;;
        *) echo amazonaws.com ;;
    esac
}

# domain_partition DOMAIN: the partition an ECR domain serves (aws also holds GovCloud).
domain_partition() {
    case "$1" in
        amazonaws.com.cn | on.amazonwebservices.com.cn) echo aws-cn ;;
        c2s.ic.gov) echo aws-iso ;;
        sc2s.sgov.gov) echo aws-iso-b ;;
        cloud.adc-e.uk) echo aws-iso-e ;;
        csp.hci.ic.gov) echo aws-iso-f ;;
        amazonaws.eu) echo aws-eusc ;;
        *) echo aws ;;
    esac
}

# ecr_host_parts HOST: "ID REGION" when HOST is one of ECR's own host names; fails otherwise.
# As in registry.parse_ecr_host: the kind (dual-stack or not) must fit the domain, and the
# region must belong to the domain's partition.
ecr_host_parts() {
    [[ $1 =~ $ECR_HOST_RE ]] || return 1
    local id=${BASH_REMATCH[1]} kind=${BASH_REMATCH[2]} region=${BASH_REMATCH[3]} domain=${BASH_REMATCH[4]}
    local dualstack=0 want partition
    [[ $region =~ $REGION_RE ]] || return 1
    case "$kind" in dkr-ecr*) dualstack=1 ;; esac
    case "$domain" in
        on.aws | on.amazonwebservices.com.cn) [ "$dualstack" = 1 ] || return 1 ;;
        *) [ "$dualstack" = 0 ] || return 1 ;;
    esac
    want=$(domain_partition "$domain")
    partition=$(partition_of "$region")
    [ "$partition" = "$want" ] || { [ "$want" = aws ] && [ "$partition" = aws-us-gov ]; } || return 1
    printf '%s %s' "$id" "$region"
}

[ -n "$ROLE_ARN" ] || usage_error "--role-arn is required"
[[ $ROLE_ARN =~ $ARN_RE ]] || usage_error "--role-arn $ROLE_ARN is not an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)"
ARN_PARTITION=${BASH_REMATCH[1]}
[ -n "$REGION" ] || usage_error "--region is required"
[[ $REGION =~ $REGION_RE ]] || usage_error "--region $REGION is not an AWS region name (like us-east-1)"
REGION_PARTITION=$(partition_of "$REGION")
[ "$ARN_PARTITION" = "$REGION_PARTITION" ] ||
    usage_error "--role-arn is in the partition $ARN_PARTITION but --region $REGION is in $REGION_PARTITION"
[ -n "$REGISTRY_ID$REGISTRY" ] || usage_error "give --registry-id ID or --registry HOST"
if [ -n "$REGISTRY_ID" ]; then
    [[ $REGISTRY_ID =~ $ID_RE ]] || usage_error "--registry-id $REGISTRY_ID is not a 12-digit AWS account id"
fi
if [ -n "$EXTERNAL_ID" ]; then
    [[ $EXTERNAL_ID =~ $EXTERNAL_ID_RE ]] || usage_error "--external-id must be 2-1224 of A-Z a-z 0-9 +=,.@:/-_"
fi
for user in ${DOCKER_USERS[@]+"${DOCKER_USERS[@]}"}; do
    [[ $user =~ $USER_RE ]] || usage_error "--docker-user $user is not a user name"
done

# SECTION is the config's [registries."SECTION"]: HOST itself, except that both of
# ECR Public's names share the section public.ecr.aws.
ALIAS=0
if [ -n "$REGISTRY" ]; then
    HOST=$(printf '%s' "$REGISTRY" | tr '[:upper:]' '[:lower:]')
    HOST=${HOST#*://}
    HOST=${HOST%%/*}
    HOST=${HOST%:443}
    [[ $HOST =~ $HOST_RE ]] || usage_error "--registry $REGISTRY is not a registry host name"
    if parts=$(ecr_host_parts "$HOST"); then
        [ -z "$REGISTRY_ID" ] || [ "$REGISTRY_ID" = "${parts% *}" ] ||
            usage_error "--registry-id $REGISTRY_ID contradicts the host $HOST"
        [ "$REGION" = "${parts#* }" ] ||
            usage_error "--region $REGION contradicts the host $HOST (${parts#* })"
        REGISTRY_ID=${parts% *}
    elif [ "$HOST" = public.ecr.aws ] || [ "$HOST" = ecr-public.aws.com ]; then
        [ -z "$REGISTRY_ID" ] || usage_error "--registry $HOST is ECR Public, which has no registry id: drop --registry-id"
        [ "$REGION_PARTITION" = aws ] || usage_error "--registry $HOST is ECR Public, in the aws partition, not $REGION_PARTITION"
    else
        [ -n "$REGISTRY_ID" ] || usage_error "--registry $HOST is not an ECR host name: give --registry-id too (an alias)"
        ALIAS=1
    fi
else
    HOST="$REGISTRY_ID.dkr.ecr.$REGION.$(partition_domain "$REGION_PARTITION")"
fi
SECTION=$HOST
[ "$HOST" != ecr-public.aws.com ] || SECTION=public.ecr.aws

# What --source names: KIND is pip, bundle, deb or rpm (by the name, see the top);
# URL is set for an https:// source, FILE for a local file.
URL="" FILE="" KIND=pip
case "$SOURCE" in
    https://*)
        URL=$SOURCE
        NAME=${URL%%[?#]*}
        NAME=${NAME##*/}
        [[ $NAME =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
            usage_error "--source $URL does not end in a file name"
        ;;
    http://* | ftp://* | file://*) usage_error "--source $SOURCE: only https:// URLs are downloaded" ;;
    *) NAME=${SOURCE##*/} ;;
esac
case "$NAME" in
    *.deb) KIND=deb ;;
    *.rpm) KIND=rpm ;;
    *-linux-*.tar.gz) KIND=bundle ;;
    *.whl | *.tar.gz) ;;
    *) [ -z "$URL" ] || usage_error "--source $URL: expected a .whl, .tar.gz, .deb or .rpm to download" ;;
esac
case "$NAME" in
    *.deb | *.rpm | *.whl | *.tar.gz) [ -n "$URL" ] || [ ! -f "$SOURCE" ] || FILE=$SOURCE ;;
esac
if [ "$KIND" != pip ] && [ -z "$URL$FILE" ]; then
    usage_error "--source $SOURCE: no such file"
fi
if [ -n "$SHA256" ]; then
    SHA256=$(printf '%s' "$SHA256" | tr '[:upper:]' '[:lower:]')
    [[ $SHA256 =~ $SHA256_RE ]] || usage_error "--sha256 needs 64 hex digits"
    [ -n "$URL$FILE" ] || usage_error "--sha256 needs a file or an https:// URL as --source"
fi

if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd -P)
    [ "$ROOT" != / ] || ROOT=""
elif [ "$(id -u)" != 0 ]; then
    die "run as root (or give --root DIR to write into a scratch root)"
fi

VENV=/opt/xecr
UNIT=/etc/systemd/system/xecr.service
CONFIG=/etc/xecr/config.toml
PACKAGE_MARKER=/var/lib/xecr-bootstrap/source

# Temporary folders: a download's, and a bundle's while it is unpacked beside /opt/xecr.
TEMP="" TEMP_STAGE=""
cleanup() {
    [ -z "$TEMP" ] || rm -rf "$TEMP"
    [ -z "$TEMP_STAGE" ] || rm -rf "$TEMP_STAGE"
}
trap cleanup EXIT

# -- helpers ------------------------------------------------------------------------------

# same_bytes A B: whether two files hold the same bytes (cmp is not on every minimal image).
same_bytes() {
    if command -v cmp >/dev/null 2>&1; then
        cmp -s "$1" "$2"
    else
        [ "$(od -An -c <"$1")" = "$(od -An -c <"$2")" ]
    fi
}

# write_if_changed DEST MODE TEXT: replace DEST atomically with TEXT (and a final newline)
# only when it differs. Succeeds (0) when it wrote, fails (1) when DEST was already right.
write_if_changed() {
    local dest=$1 mode=$2 text=$3 folder tmp
    folder=$(dirname "$dest")
    mkdir -p "$folder" || die "cannot create $folder"
    tmp=$(mktemp "$folder/.$(basename "$dest").XXXXXX") || die "cannot write in $folder"
    printf '%s\n' "$text" >"$tmp" || { rm -f "$tmp"; die "cannot write $tmp"; }
    if [ -f "$dest" ] && [ ! -L "$dest" ] && same_bytes "$tmp" "$dest" &&
        [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
        rm -f "$tmp"
        say "unchanged $dest"
        return 1
    fi
    { chmod "$mode" "$tmp" && mv -f "$tmp" "$dest"; } || { rm -f "$tmp"; die "cannot write $dest"; }
    say "wrote $dest"
    return 0
}

# link TARGET LINK: make LINK a symlink to TARGET unless it already is one.
link() {
    local target=$1 path=$2
    if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
        say "unchanged $path"
        return 0
    fi
    mkdir -p "$(dirname "$path")"
    [ ! -e "$path" ] || [ -L "$path" ] || say "replacing $path with a link to $target"
    ln -sfn "$target" "$path"
    say "linked $path -> $target"
}

python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }

find_python() {
    local candidate
    for candidate in ${XECR_BOOTSTRAP_PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Any Python 3 can merge JSON; the venv needs 3.11 or newer.
json_python() {
    local candidate
    for candidate in ${XECR_BOOTSTRAP_PYTHON:-} python3 "$ROOT$VENV/bin/python"; do
        if command -v "$candidate" >/dev/null 2>&1; then
            printf '%s' "$candidate"
            return 0
        fi
    done
    die "python3 is needed to update Docker's config.json"
}

sha256_of() {
    command -v sha256sum >/dev/null 2>&1 || die "sha256sum is needed to check $1"
    local sum
    sum=$(sha256sum <"$1") || die "cannot read $1"
    printf '%s' "${sum%% *}"
}

# download URL DEST: bounded (connect and total time, a few retries), https only.
download() {
    local err
    say "downloading $1"
    if command -v curl >/dev/null 2>&1; then
        err=$(curl --fail --silent --show-error --location --proto '=https' --proto-redir '=https' \
            --connect-timeout 20 --max-time 600 --retry 3 --retry-delay 2 -o "$2" "$1" 2>&1) ||
            die "could not download $1: ${err##*$'\n'}"
    elif command -v wget >/dev/null 2>&1; then
        local bound=()
        ! command -v timeout >/dev/null 2>&1 || bound=(timeout 1800)
        ${bound[@]+"${bound[@]}"} wget -q --https-only --timeout=20 --tries=3 -O "$2" "$1" ||
            die "could not download $1 (wget failed: check the URL and the network)"
    else
        die "curl or wget is needed to download $1"
    fi
}

# merge_cred_helper CONFIG_JSON HOST [UID:GID HOME]: add credHelpers[HOST] = "xecr", keep
# the rest. With an owner, HOME and its .docker are made for that user when missing, and
# a .docker or config.json that root owns (left by an earlier run) is given to the user.
merge_cred_helper() {
    local py
    py=$(json_python)
    "$py" - "$@" <<'PY'
import json, os, stat, sys, tempfile

path, host = sys.argv[1], sys.argv[2]
owner = sys.argv[3] if len(sys.argv) > 3 else ""
home = sys.argv[4] if len(sys.argv) > 4 else ""
uid, gid = (int(part) for part in owner.split(":")) if owner else (-1, -1)
folder = os.path.dirname(path)


def give(target):
    # Never through a link: the folders are the user's, the links in them too.
    os.chown(target, uid, gid, follow_symlinks=False)
    print(f"xecr bootstrap: gave {target} to {uid}:{gid}")


if owner:
    for made in (home, folder):
        if not os.path.lexists(made):
            os.makedirs(os.path.dirname(made), mode=0o755, exist_ok=True)
            os.mkdir(made, 0o700)
            give(made)
    for mine in (folder, path):
        info = os.lstat(mine) if os.path.lexists(mine) else None
        if info and not stat.S_ISLNK(info.st_mode) and info.st_uid == 0 and uid != 0:
            give(mine)
try:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
except FileNotFoundError:
    text = None
try:
    doc = json.loads(text) if text and text.strip() else {}
except ValueError as exc:
    sys.exit(f"xecr bootstrap: {path} is not valid JSON ({exc}); fix it and run again")
if not isinstance(doc, dict):
    sys.exit(f"xecr bootstrap: {path} is not a JSON object; fix it and run again")
helpers = doc.setdefault("credHelpers", {})
if not isinstance(helpers, dict):
    sys.exit(f"xecr bootstrap: credHelpers in {path} is not an object; fix it and run again")
if text is not None and helpers.get(host) == "xecr":
    print(f"xecr bootstrap: unchanged {path}")
    sys.exit(0)
helpers[host] = "xecr"
os.makedirs(folder, mode=0o700, exist_ok=True)
mode = stat.S_IMODE(os.stat(path).st_mode) if text is not None else 0o600
fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config.json.")
try:
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(doc, indent="\t") + "\n")
        handle.flush()
        os.fchmod(handle.fileno(), mode)
        if text is not None:
            info = os.stat(path)
            os.fchown(handle.fileno(), info.st_uid, info.st_gid)
        elif owner:
            os.fchown(handle.fileno(), uid, gid)
        os.fsync(handle.fileno())
    os.replace(tmp, path)
except BaseException:
    if os.path.exists(tmp):
        os.unlink(tmp)
    raise
print(f"xecr bootstrap: wrote {path}")
PY
}

# passwd_entry FILE USER: "UID:GID:HOME" of USER in a passwd file; fails when it is not there.
passwd_entry() {
    local name _pw uid gid _gecos home _shell
    [ -f "$1" ] || return 1
    while IFS=: read -r name _pw uid gid _gecos home _shell; do
        if [ "$name" = "$2" ]; then
            printf '%s:%s:%s' "$uid" "$gid" "$home"
            return 0
        fi
    done <"$1"
    return 1
}

# -- 1. install xecr ------------------------------------------------------------------------

# source_mark: what the install marker records, so that the same source is installed once.
# A file is known by its checksum too (a rebuilt file of the same name installs again).
source_mark() {
    if [ -n "$FILE" ]; then
        printf '%s sha256=%s' "$SOURCE" "$(sha256_of "$FILE")"
    elif [ -n "$URL" ] && [ -n "$SHA256" ]; then
        printf '%s sha256=%s' "$SOURCE" "$SHA256"
    else
        printf '%s' "$SOURCE"
    fi
}

# fetch_source: download an https:// source (into TEMP, keeping its name: pip and the
# package managers go by it) and check --sha256; FILE names the file to install.
fetch_source() {
    if [ -n "$URL" ]; then
        TEMP=$(mktemp -d "${TMPDIR:-/tmp}/xecr-bootstrap.XXXXXX") || die "cannot make a temporary folder"
        FILE=$TEMP/$NAME
        download "$URL" "$FILE"
    fi
    if [ -n "$SHA256" ]; then
        local actual
        actual=$(sha256_of "$FILE")
        [ "$actual" = "$SHA256" ] || die "$SOURCE has the SHA-256 $actual, not the $SHA256 given: not installed"
        say "checked the SHA-256 of $SOURCE"
    fi
}

# check_image_python PY: under --root the venv runs, once booted, the same interpreter
# (same path) as the one that builds it here: the image must have it.
check_image_python() {
    local base
    base=$("$1" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))') ||
        die "cannot run $1"
    [ -e "$ROOT$base" ] || [ -L "$ROOT$base" ] ||
        die "the image in $ROOT has no $base, the Python its venv would run: install it there, set XECR_BOOTSTRAP_PYTHON to one it has at the same path, or install the executable bundle"
}

# unroot_venv: pip wrote DIR/opt/xecr into the scripts' shebangs and the compiled files;
# rewrite them to name /opt/xecr, as the booted image sees it.
unroot_venv() {
    local venv=$ROOT$VENV
    "$venv/bin/python" - "$ROOT" "$VENV" <<'PY' || die "cannot rewrite the paths under $ROOT$VENV"
import os, sys

root, venv = sys.argv[1], sys.argv[2]
folder = root + venv
old, new = folder.encode(), venv.encode()
bin_folder = os.path.join(folder, "bin")
paths = [os.path.join(folder, "pyvenv.cfg")]
paths += [os.path.join(bin_folder, name) for name in sorted(os.listdir(bin_folder))]
for path in paths:
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, "rb") as handle:
        data = handle.read()
    if old not in data:
        continue
    tmp = path + ".xecr-bootstrap"
    with open(tmp, "wb") as handle:
        handle.write(data.replace(old, new))
    os.chmod(tmp, os.stat(path).st_mode)
    os.replace(tmp, path)
PY
    # Compiled once here, naming /opt/xecr: the booted image's /opt is read-only to users.
    # A module that does not compile (pip skips those too) stays as it is.
    "$venv/bin/python" -m compileall -q -f -s "$ROOT" -p / "$venv/lib" >/dev/null ||
        say "note: some modules under $venv did not compile"
}

install_pip() {
    local venv=$ROOT$VENV py spec=${FILE:-$SOURCE}
    if ! py=$(find_python); then
        [ -z "$ROOT" ] || die "no Python 3.11 or newer found (set XECR_BOOTSTRAP_PYTHON)"
        if command -v dnf >/dev/null 2>&1; then
            say "installing python3.11 with dnf"
            dnf install -y -q python3.11 || die "dnf could not install python3.11"
        elif command -v apt-get >/dev/null 2>&1; then
            say "installing python3 and python3-venv with apt-get"
            apt-get update -q && apt-get install -y -q python3 python3-venv ||
                die "apt-get could not install python3-venv"
        fi
        py=$(find_python) || die "no Python 3.11 or newer found: install one, or set XECR_BOOTSTRAP_PYTHON"
    fi
    [ -z "$ROOT" ] || check_image_python "$py"
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
        say "replacing $venv (an executable bundle) with a venv"
        rm -rf "$venv" || die "cannot remove $venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the venv $venv with $py"
        "$py" -m venv "$venv" ||
            die "cannot create the venv $venv (on Debian and Ubuntu: apt-get install python3-venv)"
    fi
    say "installing xecr from $SOURCE into $venv"
    # shellcheck disable=SC2086 # XECR_BOOTSTRAP_PIP_ARGS is a list of options
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
        ${XECR_BOOTSTRAP_PIP_ARGS:-} "$spec" || die "pip could not install $SOURCE into $venv"
    [ -x "$venv/bin/xecr" ] || die "pip installed $SOURCE but $venv/bin/xecr is missing"
    [ -z "$ROOT" ] || unroot_venv
    printf '%s\n' "$MARK" >"$venv/.bootstrap-source"
}

# install_bundle: unpack beside /opt/xecr, check it, then swap it in (two renames) and
# drop the old one: a running daemon keeps the files it has open.
install_bundle() {
    local opt=$ROOT${VENV%/*} stage top entries arch
    arch=${NAME##*-linux-}
    arch=${arch%.tar.gz}
    if [ "$arch" != "$(uname -m)" ]; then
        [ -n "$ROOT" ] || die "$NAME is built for $arch, this machine is $(uname -m): take the $(uname -m) bundle"
        say "note: $NAME is built for $arch, this machine is $(uname -m) (fine if the image is $arch)"
    fi
    mkdir -p "$opt" || die "cannot create $opt"
    stage=$(mktemp -d "$opt/.xecr-new.XXXXXX") || die "cannot write in $opt"
    TEMP_STAGE=$stage
    tar -xzf "$FILE" -C "$stage" --no-same-owner 2>/dev/null ||
        die "cannot unpack $SOURCE: is it an xecr executable bundle (xecr-VERSION-linux-ARCH.tar.gz)?"
    shopt -s nullglob dotglob
    entries=("$stage"/*)
    shopt -u nullglob dotglob
    top=${entries[0]:-}
    [ "${#entries[@]}" = 1 ] && [ -d "$top" ] && [ ! -L "$top" ] ||
        die "$SOURCE does not hold one folder: not an xecr executable bundle"
    for name in xecr docker-credential-xecr; do
        [ -f "$top/bin/$name" ] && [ -x "$top/bin/$name" ] ||
            die "$SOURCE has no executable bin/$name: not an xecr executable bundle"
    done
    printf '%s\n' "$MARK" >"$top/.bootstrap-source"
    chmod 0755 "$top"
    say "installing the executable bundle $NAME into $ROOT$VENV"
    if [ -e "$ROOT$VENV" ] || [ -L "$ROOT$VENV" ]; then
        mv "$ROOT$VENV" "$stage/old" || die "cannot move the old $ROOT$VENV aside"
    fi
    mv "$top" "$ROOT$VENV" || die "cannot move the bundle into $ROOT$VENV"
    rm -rf "$stage"
    TEMP_STAGE=""
}

# unpack_into_root: under --root a package's files are unpacked into DIR (keeping the
# image's directory links, as /lib -> usr/lib).
unpack_into_root() {
    case "$KIND" in
        deb)
            command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is needed to unpack $NAME into $ROOT"
            dpkg-deb --fsys-tarfile "$FILE" | tar -x -C "$ROOT" --keep-directory-symlink --no-same-owner ||
                die "cannot unpack $NAME into $ROOT"
            ;;
        rpm)
            command -v rpm2cpio >/dev/null 2>&1 && command -v cpio >/dev/null 2>&1 ||
                die "rpm2cpio and cpio are needed to unpack $NAME into $ROOT"
            rpm2cpio "$FILE" | (cd "$ROOT" && cpio -idm --quiet --no-absolute-filenames) ||
                die "cannot unpack $NAME into $ROOT"
            ;;
    esac
}

install_package() {
    local file=$FILE
    [ "${file#/}" != "$file" ] || file=$PWD/$file # apt-get and dnf take ./x or /x only
    say "installing the package $NAME"
    if [ -n "$ROOT" ]; then
        unpack_into_root
    elif [ "$KIND" = deb ]; then
        command -v dpkg >/dev/null 2>&1 || die "$NAME is a Debian package and dpkg is missing: take the .rpm or the executable bundle"
        # User-data has no terminal: no debconf questions.
        export DEBIAN_FRONTEND=noninteractive
        if ! dpkg -i "$file"; then
            command -v apt-get >/dev/null 2>&1 || die "dpkg could not install $NAME (see above)"
            say "installing what $NAME depends on with apt-get"
            { apt-get update -q && apt-get install -f -y -q; } || die "apt-get could not install what $NAME depends on"
        fi
    elif command -v dnf >/dev/null 2>&1; then
        if [ "$REINSTALL" = 1 ]; then
            dnf reinstall -y -q "$file" || dnf install -y -q "$file" || die "dnf could not install $NAME"
        else
            dnf install -y -q "$file" || die "dnf could not install $NAME"
        fi
    elif command -v rpm >/dev/null 2>&1; then
        rpm -U --replacepkgs "$file" || die "rpm could not install $NAME"
    else
        die "$NAME is an RPM package and neither dnf nor rpm is here: take the .deb or the executable bundle"
    fi
    [ -x "$ROOT/usr/bin/xecr" ] || die "$NAME installed no /usr/bin/xecr: not an xecr package"
    mkdir -p "$ROOT${PACKAGE_MARKER%/*}" && printf '%s\n' "$MARK" >"$ROOT$PACKAGE_MARKER" ||
        die "cannot write $ROOT$PACKAGE_MARKER"
}

# XECR_BIN is what the unit runs: /usr/bin/xecr from a package, else the /usr/local/bin link.
INSTALLED=0 XECR_BIN=/usr/local/bin/xecr
install_xecr() {
    local marker=$ROOT$VENV/.bootstrap-source installed=$ROOT$VENV/bin/xecr
    case "$KIND" in deb | rpm) marker=$ROOT$PACKAGE_MARKER installed=$ROOT/usr/bin/xecr ;; esac
    if [ "${XECR_BOOTSTRAP_SKIP_INSTALL:-}" = 1 ]; then
        say "skipping the install of xecr (XECR_BOOTSTRAP_SKIP_INSTALL=1)"
        return 0
    fi
    MARK=$(source_mark)
    if [ "$REINSTALL" = 0 ] && [ -x "$installed" ] && [ -f "$marker" ] &&
        [ "$(cat "$marker")" = "$MARK" ]; then
        say "unchanged $installed (xecr from $SOURCE; --reinstall to install again)"
        return 0
    fi
    fetch_source
    case "$KIND" in
        pip) install_pip ;;
        bundle) install_bundle ;;
        deb | rpm) install_package ;;
    esac
    INSTALLED=1
}
install_xecr

# Where the package manager put xecr, the unit runs /usr/bin/xecr; otherwise /usr/local/bin
# links into /opt/xecr (with XECR_BOOTSTRAP_SKIP_INSTALL=1 too, unless only a package's is there).
if [ "$KIND" = deb ] || [ "$KIND" = rpm ] ||
    { [ "${XECR_BOOTSTRAP_SKIP_INSTALL:-}" = 1 ] && [ ! -e "$ROOT$VENV/bin/xecr" ] && [ -x "$ROOT/usr/bin/xecr" ]; }; then
    XECR_BIN=/usr/bin/xecr
    if [ -e "$ROOT/usr/local/bin/xecr" ] || [ -L "$ROOT/usr/local/bin/xecr" ]; then
        say "note: $ROOT/usr/local/bin/xecr comes before /usr/bin/xecr on PATH; remove it if the package replaces it"
    fi
else
    link "$VENV/bin/xecr" "$ROOT/usr/local/bin/xecr"
    link "$VENV/bin/docker-credential-xecr" "$ROOT/usr/local/bin/docker-credential-xecr"
fi

# -- 2. the machine-wide config -------------------------------------------------------------

config_text() {
    printf '# Written by the xecr EC2 bootstrap (bootstrap.sh); run it again to change it.\n'
    printf '[defaults]\nregion = "%s"\n\n' "$REGION"
    printf '[registries."%s"]\n' "$SECTION"
    [ "$ALIAS" = 0 ] || printf 'registry_id = "%s"\n' "$REGISTRY_ID"
    printf 'role_arn = "%s"\n' "$ROLE_ARN"
    [ -z "$EXTERNAL_ID" ] || printf 'external_id = "%s"\n' "$EXTERNAL_ID"
}
CONFIG_CHANGED=0
if write_if_changed "$ROOT$CONFIG" 0644 "$(config_text)"; then CONFIG_CHANGED=1; fi
chmod 0755 "$ROOT/etc/xecr"

# -- 3. Docker's config: root's, and each --docker-user's (owned by that user) -------------

merge_cred_helper "$ROOT/root/.docker/config.json" "$HOST"
for user in ${DOCKER_USERS[@]+"${DOCKER_USERS[@]}"}; do
    if [ -n "$ROOT" ]; then
        if ! entry=$(passwd_entry "$ROOT/etc/passwd" "$user"); then
            say "--docker-user $user is not in $ROOT/etc/passwd: $ROOT/home/$user/.docker stays owned by root (add the user to the image first)"
            merge_cred_helper "$ROOT/home/$user/.docker/config.json" "$HOST"
            continue
        fi
    else
        entry=$(getent passwd "$user") || die "--docker-user $user: no such user"
        entry=$(printf '%s\n' "$entry" | cut -d: -f3,4,6)
    fi
    IFS=: read -r uid gid home <<<"$entry"
    [[ $uid =~ ^[0-9]+$ ]] && [[ $gid =~ ^[0-9]+$ ]] && [ "${home#/}" != "$home" ] ||
        die "--docker-user $user: its passwd entry has no numeric ids or no absolute home folder"
    merge_cred_helper "$ROOT$home/.docker/config.json" "$HOST" "$uid:$gid" "$ROOT$home"
done

# -- 4. the systemd unit (the same text as packaging/systemd/xecr.service) ------------------

UNIT_TEXT=$(cat <<'UNIT'
# xecr login daemon, machine-wide (EC2 instances, servers): runs as root,
# reads /etc/xecr/config.toml and keeps the tokens in /var/cache/xecr, which
# every user's `docker-credential-xecr get` reads (members of the docker group).
# Install: see packaging/README.md (packaging/ec2/bootstrap.sh does it all).
[Unit]
Description=xecr login daemon: keeps Amazon ECR tokens fresh for Docker
Documentation=file:/usr/share/doc/xecr/README.md
Wants=network-online.target
After=network-online.target
Before=docker.service containerd.service

[Service]
Type=notify
# READY=1 comes once every registry's first refresh is done (fetched or
# failed), so units ordered After= this one start with tokens in the cache. A
# refresh is bounded (90 s with the lock wait), well inside the start timeout.
TimeoutStartSec=150
# WATCHDOG=1 comes every 30 s from the refresh loops themselves: a loop stuck
# past its bound stops it, and systemd restarts the daemon (Restart= below).
WatchdogSec=60
User=root
# Never without a HOME: the AWS credential chain and xecr's folders derive from it.
Environment=HOME=/root
Environment=XECR_LOG_DIR=/var/log/xecr
# Run outside the sandbox below, which needs both folders to exist already.
ExecStartPre=+/bin/mkdir -p -m 0700 /var/cache/xecr /var/log/xecr
ExecStart=/usr/local/bin/xecr daemon
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
TimeoutStopSec=15

# Hardening: the daemon writes its cache and log folders, reads its config
# and the AWS files, and talks HTTPS to STS and ECR (and instance metadata).
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/cache/xecr /var/log/xecr
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
# CAP_CHOWN: the cache folder and files get the docker group.
CapabilityBoundingSet=CAP_CHOWN
UMask=0077

[Install]
WantedBy=multi-user.target
UNIT
)
UNIT_TEXT=${UNIT_TEXT/ExecStart=\/usr\/local\/bin\/xecr daemon/ExecStart=$XECR_BIN daemon}
UNIT_CHANGED=0
if write_if_changed "$ROOT$UNIT" 0644 "$UNIT_TEXT"; then UNIT_CHANGED=1; fi

if [ "$ENABLE" = 0 ]; then
    say "not enabling xecr.service (--no-enable)"
elif [ -n "$ROOT" ]; then
    link "$UNIT" "$ROOT/etc/systemd/system/multi-user.target.wants/xecr.service"
elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    [ "$UNIT_CHANGED" = 0 ] || systemctl daemon-reload
    if ! systemctl is-enabled --quiet xecr.service 2>/dev/null; then
        systemctl enable --quiet xecr.service
        say "enabled xecr.service"
    fi
    if [ "$UNIT_CHANGED" = 1 ] || [ "$INSTALLED" = 1 ]; then
        systemctl restart xecr.service && say "restarted xecr.service"
    elif [ "$CONFIG_CHANGED" = 1 ]; then
        systemctl reload-or-restart xecr.service && say "reloaded xecr.service"
    elif ! systemctl is-active --quiet xecr.service; then
        systemctl start xecr.service && say "started xecr.service"
    fi
else
    say "systemd is not running here: start \`xecr daemon\` under your own supervisor"
fi

say "done: $HOST via $ROLE_ARN; check with \`xecr daemon --once\`"
