dnl hb_apxs.m4: find httpd's apxs and take every build path from it.
dnl On Debian, apxs -q prefix is empty and the server binary is "apache2":
dnl nothing here assumes a prefix or a binary name.

dnl HB_CHECK_APXS: sets APXS, APXS_INCLUDEDIR, APXS_LIBEXECDIR, HTTPD,
dnl HTTPD_CPPFLAGS (httpd + APR + APR-util include flags and defines).
AC_DEFUN([HB_CHECK_APXS], [
  AC_ARG_WITH([apxs],
    [AS_HELP_STRING([--with-apxs=PATH], [path to httpd's apxs (default: search PATH for apxs, apxs2)])],
    [APXS="$withval"], [APXS=""])
  AS_IF([test -z "$APXS" || test "x$APXS" = xyes],
    [AC_PATH_PROGS([APXS], [apxs apxs2], [], [$PATH$PATH_SEPARATOR/usr/bin$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/usr/local/apache2/bin])])
  AS_IF([test -z "$APXS" || ! test -x "$APXS"],
    [AC_MSG_ERROR([apxs was not found.
    The httpd development files are needed to build the heartbeat modules.
    Debian/Ubuntu: apt-get install apache2-dev
    Fedora/RHEL:   dnf install httpd-devel
    Or give the path: ./configure --with-apxs=/path/to/apxs])])

  AC_MSG_CHECKING([httpd include directory])
  APXS_INCLUDEDIR=`$APXS -q INCLUDEDIR 2>/dev/null`
  AC_MSG_RESULT([$APXS_INCLUDEDIR])
  AC_MSG_CHECKING([httpd module directory])
  APXS_LIBEXECDIR=`$APXS -q LIBEXECDIR 2>/dev/null`
  AC_MSG_RESULT([$APXS_LIBEXECDIR])
  AS_IF([test -z "$APXS_INCLUDEDIR" || test -z "$APXS_LIBEXECDIR"],
    [AC_MSG_ERROR([$APXS did not report INCLUDEDIR/LIBEXECDIR; is it httpd 2.4's apxs?])])

  APXS_SYSCONFDIR=`$APXS -q SYSCONFDIR 2>/dev/null`
  AC_SUBST([APXS_SYSCONFDIR])

  AC_MSG_CHECKING([httpd binary])
  hb_sbindir=`$APXS -q SBINDIR 2>/dev/null`
  hb_target=`$APXS -q TARGET 2>/dev/null`
  HTTPD="$hb_sbindir/$hb_target"
  AS_IF([test -x "$HTTPD"], [AC_MSG_RESULT([$HTTPD])],
    [AC_MSG_RESULT([not found ($HTTPD); integration tests need it])])

  dnl APR and APR-util: apxs knows which configs httpd was built with.
  hb_apr_config=`$APXS -q APR_CONFIG 2>/dev/null`
  hb_apu_config=`$APXS -q APU_CONFIG 2>/dev/null`
  AS_IF([test -z "$hb_apr_config" || ! test -x "$hb_apr_config"],
    [AC_PATH_PROGS([hb_apr_config], [apr-1-config], [])])
  AS_IF([test -z "$hb_apu_config" || ! test -x "$hb_apu_config"],
    [AC_PATH_PROGS([hb_apu_config], [apu-1-config], [])])
  AS_IF([test -z "$hb_apr_config"],
    [AC_MSG_ERROR([apr-1-config not found. Debian/Ubuntu: apt-get install libapr1-dev libaprutil1-dev])])
  APR_CPPFLAGS="`$hb_apr_config --includes --cppflags`"
  APR_LIBS="`$hb_apr_config --link-ld --libs`"
  AS_IF([test -n "$hb_apu_config"], [
    APR_CPPFLAGS="$APR_CPPFLAGS `$hb_apu_config --includes`"
    APU_LIBS="`$hb_apu_config --link-ld`"
  ])
  hb_extra_cppflags=`$APXS -q EXTRA_CPPFLAGS 2>/dev/null`
  HTTPD_CPPFLAGS="-I$APXS_INCLUDEDIR $APR_CPPFLAGS $hb_extra_cppflags"

  AC_SUBST([APXS])
  AC_SUBST([APXS_INCLUDEDIR])
  AC_SUBST([APXS_LIBEXECDIR])
  AC_SUBST([HTTPD])
  AC_SUBST([APR_CPPFLAGS])
  AC_SUBST([APR_LIBS])
  AC_SUBST([APU_LIBS])
  AC_SUBST([HTTPD_CPPFLAGS])
])

dnl HB_CHECK_HTTPD_HEADERS: the headers the modules need must be there.
AC_DEFUN([HB_CHECK_HTTPD_HEADERS], [
  hb_save_CPPFLAGS="$CPPFLAGS"
  CPPFLAGS="$CPPFLAGS $HTTPD_CPPFLAGS"
  AC_CHECK_HEADER([httpd.h], [],
    [AC_MSG_ERROR([httpd.h not found in $APXS_INCLUDEDIR. Debian/Ubuntu: apt-get install apache2-dev])])
  AC_CHECK_HEADER([apr_shm.h], [],
    [AC_MSG_ERROR([APR headers not found. Debian/Ubuntu: apt-get install libapr1-dev libaprutil1-dev])])
  AC_CHECK_HEADERS([mod_watchdog.h mod_proxy.h ap_slotmem.h], [],
    [AC_MSG_ERROR([$ac_header not found: httpd 2.4 development headers are incomplete])],
    [#include "httpd.h"])
  AC_MSG_CHECKING([for httpd 2.4])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include "ap_release.h"]],
      [[#if AP_SERVER_MAJORVERSION_NUMBER != 2 || AP_SERVER_MINORVERSION_NUMBER != 4
        #error not 2.4
        #endif]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_ERROR([these modules are for Apache httpd 2.4])])
  CPPFLAGS="$hb_save_CPPFLAGS"
])
