#!/bin/sh
# The system side of `make install` and `make uninstall` (Makefile.am).
#
#   install-modules.sh ACTION MODDIR SYSCONFDIR SRCDIR
#
# ACTION is one of
#   divert     before anything is installed: each file we are about to
#              install that belongs to a Debian package (Debian's apache2
#              ships mod_heartbeat.so, mod_heartmonitor.so,
#              mod_lbmethod_heartbeat.so and their .load files) is diverted
#              with `dpkg-divert --local --rename` to FILE.distrib, so that
#              ours do not silently replace the package's files and package
#              upgrades update the .distrib copies instead of ours.
#   apache2    the .conf and .load files into SYSCONFDIR/mods-available, on
#              Debian-style layouts.
#   report     after installing: what is diverted, and how to undo it.
#   uninstall  removes our modules, .load and .conf files, then removes the
#              diversions, which renames the package's files back.
#
# Diversions are made only when DESTDIR (environment) is empty, dpkg-divert
# exists and the file belongs to a package (dpkg-query -S); a staged install
# (DESTDIR, packaging) installs and removes files plainly.
set -u

action=$1
moddir=$2
sysconfdir=$3
srcdir=$4
DESTDIR=${DESTDIR-}
case $DESTDIR in
*[!/]*) ;;
*) DESTDIR= ;; # DESTDIR=/ stages nothing: this is the real system
esac

modules="mod_heartbeat mod_heartmonitor mod_lbmethod_heartbeat"
names="heartbeat heartmonitor lbmethod_heartbeat"
# The marker our .load files carry.
marker=heartbeat-suite

mods="$DESTDIR$sysconfdir/mods-available"
debian_layout() {
    test -d "$sysconfdir/mods-available" || test -d "$mods"
}

# The system files we install (without DESTDIR).
files() {
    for m in $modules; do echo "$moddir/$m.so"; done
    if debian_layout; then
        for n in $names; do
            echo "$sysconfdir/mods-available/$n.load"
            echo "$sysconfdir/mods-available/$n.conf"
        done
    fi
}

can_divert() {
    test -z "$DESTDIR" && command -v dpkg-divert >/dev/null 2>&1 &&
        command -v dpkg-query >/dev/null 2>&1
}

# dpkg is slow to ask: one dpkg-query -S for all our files, one
# dpkg-divert --list, then look the answers up.
ask_dpkg() {
    # shellcheck disable=SC2046 # one word per file
    owners=$(dpkg-query -S $(files) 2>/dev/null)
    diversions=$(dpkg-divert --list)
}

# The package that owns $1 (empty if none), ignoring diversion lines.
owner() {
    printf '%s\n' "$owners" | while IFS= read -r line; do
        case $line in
        *diversion*) ;;
        *": $1") echo "${line%": $1"}" ;;
        esac
    done
}

# Whether $1 is diverted by us: a local diversion to $1.distrib.
diverted_by_us() {
    printf '%s\n' "$diversions" | grep -qxF "local diversion of $1 to $1.distrib"
}

# Any diversion of $1 (ours or not), as dpkg-divert --list shows it.
diversion_of() {
    printf '%s\n' "$diversions" | grep -F -e "diversion of $1 to " | head -n 1
}

divert() {
    can_divert || return 0
    ask_dpkg
    rc=0
    for f in $(files); do
        pkg=$(owner "$f")
        test -n "$pkg" || continue
        if diverted_by_us "$f"; then
            continue # an earlier make install
        fi
        other=$(diversion_of "$f")
        if test -n "$other"; then
            echo "heartbeat-suite: $f (package $pkg) is already diverted" \
                "($other); not installing over it." >&2
            echo "  Remove that diversion first (dpkg-divert(1))." >&2
            rc=1
        else
            dpkg-divert --local --rename --add --divert "$f.distrib" "$f" || rc=1
        fi
    done
    return $rc
}

install_apache2() {
    debian_layout || return 0
    mkdir -p "$mods" || return 1
    for n in $names; do
        install -m 644 "$srcdir/build/apache2/$n.conf" "$mods/$n.conf" || return 1
        load="$mods/$n.load"
        # Without DESTDIR, a package's .load file has been diverted by now;
        # one that is neither ours nor a package's is the administrator's.
        if test -z "$DESTDIR" && test -e "$load" && ! grep -q "$marker" "$load"; then
            echo "heartbeat-suite: keeping $load (not ours, not from a package);" \
                "remove it and run make install again for ours"
            continue
        fi
        sed "s|@moddir@|$moddir|" "$srcdir/build/apache2/$n.load.in" >"$load.tmp" &&
            chmod 644 "$load.tmp" && mv -f "$load.tmp" "$load" || return 1
    done
}

report() {
    can_divert || return 0
    ask_dpkg
    list=""
    for f in $(files); do
        diverted_by_us "$f" || continue
        list="$list
  $f ($(owner "$f")) -> $f.distrib"
    done
    test -n "$list" || return 0
    cat <<EOF

heartbeat-suite: ours replace these files of Debian packages, which are
diverted (dpkg-divert --local) so that package upgrades update the
*.distrib copies instead of overwriting ours:$list
To undo: \`make uninstall\` removes ours and renames the package's files
back. By hand, for each FILE above:
  rm FILE && dpkg-divert --local --rename --remove FILE
See docs/install.md.

EOF
}

# Whether we may remove $1 (a system path): not if it belongs to a package
# and is not diverted by us, since then it is the package's file, not ours.
removable() {
    can_divert || return 0
    diverted_by_us "$1" && return 0
    pkg=$(owner "$1")
    test -z "$pkg" && return 0
    echo "heartbeat-suite: keeping $1: it is package $pkg's, not ours (not diverted)"
    return 1
}

uninstall() {
    rc=0
    can_divert && ask_dpkg
    for m in $modules; do
        f="$moddir/$m.so"
        removable "$f" && rm -f "$DESTDIR$f"
    done
    for n in $names; do
        f="$sysconfdir/mods-available/$n"
        test -e "$DESTDIR$f.conf" && removable "$f.conf" && rm -f "$DESTDIR$f.conf"
        if grep -q "$marker" "$DESTDIR$f.load" 2>/dev/null; then
            removable "$f.load" && rm -f "$DESTDIR$f.load"
        fi
    done
    can_divert || return 0
    for f in $(files); do
        diverted_by_us "$f" || continue
        if test -e "$f"; then
            echo "heartbeat-suite: $f is not ours; not removing the diversion" \
                "of $f to $f.distrib" >&2
            rc=1
            continue
        fi
        dpkg-divert --local --rename --remove "$f" || rc=1
    done
    return $rc
}

case $action in
divert) divert ;;
apache2) install_apache2 ;;
report) report ;;
uninstall) uninstall ;;
*)
    echo "usage: $0 divert|apache2|report|uninstall MODDIR SYSCONFDIR SRCDIR" >&2
    exit 2
    ;;
esac
