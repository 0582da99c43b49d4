/*
 * tests/abi/layout.h - every member of every ABI 2.0 struct, as an
 * X-macro list. Expanded once against the 2.0 fixture headers
 * (layout_2_0.c) and once against include/ (test_abi.c): each member
 * must keep its offset and size, and no struct may shrink, or a module
 * built against 2.0 would read the wrong bytes (module.h rule 3).
 * A member appended after 2.0 is not listed here: it has no 2.0 place.
 */
#ifndef MERPATI_TESTS_ABI_LAYOUT_H
#define MERPATI_TESTS_ABI_LAYOUT_H

#include <stddef.h>

#define ABI_2_0_MEMBERS(X) \
	X(mp_auth_ops, struct_size) \
	X(mp_auth_ops, user_exists) \
	X(mp_auth_ops, verify) \
	X(mp_auth_ops, user_add) \
	X(mp_auth_ops, user_del) \
	X(mp_auth_ops, user_passwd) \
	X(mp_auth_ops, user_list) \
	X(mp_auth, struct_size) \
	X(mp_auth, ops) \
	X(mp_auth, ctx) \
	X(mp_deliver_ops, struct_size) \
	X(mp_deliver_ops, deliver) \
	X(mp_filter_ops, struct_size) \
	X(mp_filter_ops, end_of_data) \
	X(mp_status, struct_size) \
	X(mp_status, reply) \
	X(mp_status, enhanced) \
	X(mp_status, text) \
	X(mp_reader, struct_size) \
	X(mp_reader, read) \
	X(mp_reader, size) \
	X(mp_reader, priv) \
	X(mp_envelope, struct_size) \
	X(mp_envelope, queue_id) \
	X(mp_envelope, sender) \
	X(mp_envelope, rcpts) \
	X(mp_envelope, nrcpt) \
	X(mp_envelope, arrival) \
	X(mp_envelope, helo) \
	X(mp_envelope, client_addr) \
	X(mp_envelope, auth_user) \
	X(mp_option, struct_size) \
	X(mp_option, name) \
	X(mp_option, type) \
	X(mp_option, offset) \
	X(mp_option, def) \
	X(mp_option, min) \
	X(mp_option, max) \
	X(mp_host, abi_version) \
	X(mp_host, struct_size) \
	X(mp_host, log) \
	X(mp_host, log_errno) \
	X(mp_host, conf_options) \
	X(mp_host, alloc) \
	X(mp_host, free) \
	X(mp_host, hostname) \
	X(mp_host, now) \
	X(mp_host, is_local_domain) \
	X(mp_host, queue_inject) \
	X(mp_host, auth) \
	X(mp_host, conf_member) \
	X(mp_host, conf_elem) \
	X(mp_host, conf_length) \
	X(mp_host, conf_string) \
	X(mp_host, conf_where) \
	X(mp_host, store) \
	X(mp_host, conn_read_line) \
	X(mp_host, conn_read) \
	X(mp_host, conn_write) \
	X(mp_host, conn_printf) \
	X(mp_host, conn_flush) \
	X(mp_host, conn_pending) \
	X(mp_host, conn_start_tls) \
	X(mp_host, conn_info) \
	X(mp_host, conn_set_timeout) \
	X(mp_host, base64_decode) \
	X(mp_host, base64_encode) \
	X(mp_host, conf_name) \
	X(mp_host, conf_int) \
	X(mp_host, conn_wait) \
	X(mp_host, sync_group) \
	X(mp_host, sasl_plain) \
	X(mp_host, auth_allowed) \
	X(mp_module, abi_version) \
	X(mp_module, struct_size) \
	X(mp_module, name) \
	X(mp_module, kinds) \
	X(mp_module, init) \
	X(mp_module, fini) \
	X(mp_module, auth) \
	X(mp_module, route) \
	X(mp_module, resolve) \
	X(mp_module, retry) \
	X(mp_module, deliver) \
	X(mp_module, store) \
	X(mp_module, filter) \
	X(mp_module, protocol) \
	X(mp_conn_info, struct_size) \
	X(mp_conn_info, peer) \
	X(mp_conn_info, loopback) \
	X(mp_conn_info, tls) \
	X(mp_conn_info, tls_desc) \
	X(mp_conn_info, starttls) \
	X(mp_conn_info, listener) \
	X(mp_protocol_ops, struct_size) \
	X(mp_protocol_ops, protocol) \
	X(mp_protocol_ops, session) \
	X(mp_mx, struct_size) \
	X(mp_mx, preference) \
	X(mp_mx, host) \
	X(mp_resolve_ops, struct_size) \
	X(mp_resolve_ops, mx) \
	X(mp_resolve_ops, addresses) \
	X(mp_retry_info, struct_size) \
	X(mp_retry_info, arrival) \
	X(mp_retry_info, last_attempt) \
	X(mp_retry_info, attempts) \
	X(mp_retry_info, warned) \
	X(mp_retry_info, last_status) \
	X(mp_retry_decision, struct_size) \
	X(mp_retry_decision, next_attempt) \
	X(mp_retry_decision, send_warning) \
	X(mp_retry_decision, give_up) \
	X(mp_retry_ops, struct_size) \
	X(mp_retry_ops, schedule) \
	X(mp_route_decision, struct_size) \
	X(mp_route_decision, action) \
	X(mp_route_decision, relay_host) \
	X(mp_route_decision, addresses) \
	X(mp_route_decision, naddresses) \
	X(mp_route_decision, status) \
	X(mp_route_ops, struct_size) \
	X(mp_route_ops, route) \
	X(mp_folder_info, struct_size) \
	X(mp_folder_info, uidvalidity) \
	X(mp_folder_info, uidnext) \
	X(mp_folder_info, messages) \
	X(mp_folder_info, unseen) \
	X(mp_folder_info, recent) \
	X(mp_msg_info, struct_size) \
	X(mp_msg_info, uid) \
	X(mp_msg_info, flags) \
	X(mp_msg_info, size) \
	X(mp_msg_info, internal_date) \
	X(mp_msg_info, keywords) \
	X(mp_store_ops, struct_size) \
	X(mp_store_ops, open) \
	X(mp_store_ops, close) \
	X(mp_store_ops, folders) \
	X(mp_store_ops, folder_create) \
	X(mp_store_ops, folder_delete) \
	X(mp_store_ops, folder_rename) \
	X(mp_store_ops, folder_subscribe) \
	X(mp_store_ops, folder_open) \
	X(mp_store_ops, folder_close) \
	X(mp_store_ops, folder_info) \
	X(mp_store_ops, messages) \
	X(mp_store_ops, message_open) \
	X(mp_store_ops, message_close) \
	X(mp_store_ops, flags_set) \
	X(mp_store_ops, append) \
	X(mp_store_ops, copy) \
	X(mp_store_ops, expunge) \
	X(mp_store_ops, lock) \
	X(mp_store_ops, change_fd) \
	X(mp_store_ops, import) \
	X(mp_store_ops, flags_change) \
	X(mp_store_ops, folder_keywords) \
	X(mp_store, struct_size) \
	X(mp_store, ops) \
	X(mp_store, ctx)

#define ABI_2_0_STRUCTS(Y) \
	Y(mp_auth_ops) \
	Y(mp_auth) \
	Y(mp_deliver_ops) \
	Y(mp_filter_ops) \
	Y(mp_status) \
	Y(mp_reader) \
	Y(mp_envelope) \
	Y(mp_option) \
	Y(mp_host) \
	Y(mp_module) \
	Y(mp_conn_info) \
	Y(mp_protocol_ops) \
	Y(mp_mx) \
	Y(mp_resolve_ops) \
	Y(mp_retry_info) \
	Y(mp_retry_decision) \
	Y(mp_retry_ops) \
	Y(mp_route_decision) \
	Y(mp_route_ops) \
	Y(mp_folder_info) \
	Y(mp_msg_info) \
	Y(mp_store_ops) \
	Y(mp_store)

struct abi_place {
	const char *name;	/* "mp_host.sasl_plain", "sizeof mp_host" */
	size_t offset, size;
};

#define ABI_MEMBER_PLACE(s, m) \
	{ #s "." #m, offsetof(struct s, m), sizeof(((struct s *)0)->m) },
#define ABI_STRUCT_PLACE(s) { "sizeof " #s, 0, sizeof(struct s) },

/* The places as the fixture headers lay them out (layout_2_0.c). */
extern const struct abi_place abi_2_0_members[], abi_2_0_structs[];
extern const size_t abi_2_0_nmembers, abi_2_0_nstructs;

#endif
