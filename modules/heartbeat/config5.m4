dnl Build inside an httpd 2.4 source tree: see docs/httpd-tree.md.
dnl config5, as the stock modules/cluster/config5.m4 it replaces. Unlike the
dnl stock module it needs no mod_watchdog: the sender is a thread of its own.

APACHE_MODPATH_INIT(heartbeat)

dnl The httpd-independent core is compiled here from ../common (Makefile.in
dnl adds it to VPATH).
heartbeat_objects="mod_heartbeat.lo hb_elect.lo hb_auth.lo hb_config.lo hb_throttle.lo hb_net.lo hb_packet.lo hb_join.lo \
hm_pace.lo hm_ratelimit.lo hm_storage.lo hm_table.lo hm_addr.lo lbhb_pick.lo lbhb_outlier.lo lbhb_load.lo lbhb_join.lo hb_prom.lo"

APACHE_MODULE(heartbeat, [Sends this server's capacity as heartbeats (heartbeat suite)],
              $heartbeat_objects, , , [
  APR_ADDTO(INCLUDES, [-I\$(top_srcdir)/modules/common])
  AC_CHECK_LIB(crypto, HMAC, [
    APR_ADDTO(MOD_HEARTBEAT_LDADD, [-lcrypto])
  ], [
    AC_MSG_WARN([mod_heartbeat needs libcrypto (Debian: libssl-dev)])
    enable_heartbeat=no
  ])
  APR_ADDTO(MOD_HEARTBEAT_LDADD, [-export-symbols-regex heartbeat_module])
])

APACHE_MODPATH_FINISH
