dnl Build inside an httpd 2.4 source tree: see docs/httpd-tree.md.
dnl config5, as the stock modules/cluster/config5.m4 it replaces.

APACHE_MODPATH_INIT(heartmonitor)

dnl The httpd-independent core is compiled here from ../common (Makefile.in
dnl adds it to VPATH).
heartmonitor_objects="mod_heartmonitor.lo hm_config.lo hm_listen.lo hm_receiver.lo hm_handlers.lo hb_elect.lo hm_shm.lo hb_auth.lo hb_config.lo hb_throttle.lo hb_net.lo hb_packet.lo hb_join.lo \
hm_pace.lo hm_ratelimit.lo hm_storage.lo hm_table.lo hm_addr.lo lbhb_pick.lo lbhb_outlier.lo hb_log.lo hm_admit.lo hm_due.lo lbhb_load.lo lbhb_join.lo hb_prom.lo"

APACHE_MODULE(heartmonitor, [Collects heartbeats into a shared table (heartbeat suite)],
              $heartmonitor_objects, , , [
  APR_ADDTO(INCLUDES, [-I\$(top_srcdir)/modules/common])
  dnl The status page shows the balancers' members (mod_lbmethod_heartbeat.h).
  APR_ADDTO(INCLUDES, [-I\$(top_srcdir)/modules/lbmethod_heartbeat])
  AC_CHECK_LIB(crypto, HMAC, [
    APR_ADDTO(MOD_HEARTMONITOR_LDADD, [-lcrypto])
  ], [
    AC_MSG_WARN([mod_heartmonitor needs libcrypto (Debian: libssl-dev)])
    enable_heartmonitor=no
  ])
  APR_ADDTO(MOD_HEARTMONITOR_LDADD, [-export-symbols-regex heartmonitor_module])
])

APACHE_MODPATH_FINISH
