dnl Build inside an httpd 2.4 source tree: see docs/httpd-tree.md.
dnl config5 so that it comes after modules/core (mod_watchdog), as the
dnl stock modules/cluster/config5.m4 it replaces did.

APACHE_MODPATH_INIT(lbmethod_heartbeat)

dnl The httpd-independent core is compiled here from ../common (Makefile.in
dnl adds it to VPATH).
dnl mod_heartmonitor.h (the monitor's optional functions) is included from
dnl ../heartmonitor, where it lives beside the module that provides them.
lbmethod_heartbeat_objects="mod_lbmethod_heartbeat.lo lbhb_file.lo lbhb_inflight.lo lbhb_reports.lo lbhb_members.lo lbhb_joiner.lo hb_auth.lo hb_config.lo hb_throttle.lo hb_net.lo hb_packet.lo hb_join.lo \
hm_pace.lo hm_ratelimit.lo hm_storage.lo hm_table.lo hm_addr.lo lbhb_pick.lo lbhb_outlier.lo lbhb_load.lo lbhb_join.lo hb_prom.lo"

APACHE_MODULE(lbmethod_heartbeat, [Load balancing from heartbeats (heartbeat suite)],
              $lbmethod_heartbeat_objects, , , [
  APR_ADDTO(INCLUDES, [-I\$(top_srcdir)/modules/common])
  APR_ADDTO(INCLUDES, [-I\$(top_srcdir)/modules/heartmonitor])
  AC_CHECK_LIB(crypto, HMAC, [
    APR_ADDTO(MOD_LBMETHOD_HEARTBEAT_LDADD, [-lcrypto])
  ], [
    AC_MSG_WARN([mod_lbmethod_heartbeat needs libcrypto (Debian: libssl-dev)])
    enable_lbmethod_heartbeat=no
  ])
  APR_ADDTO(MOD_LBMETHOD_HEARTBEAT_LDADD, [-export-symbols-regex lbmethod_heartbeat_module])
], proxy_balancer)

APACHE_MODPATH_FINISH
