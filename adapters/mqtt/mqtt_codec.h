/* SPDX-License-Identifier: Apache-2.0 */
/* The MQTT packet codec (3.1, 3.1.1 and 5.0): framing, decoders that return views into the
 * caller's bytes, and encoders that append whole packets to an fy_buf. Pure functions over
 * buffers: no sockets, no globals, no allocation while decoding, safe on any input.
 *
 * Return convention of every decoder and of fy_mqtt_frame:
 *   0                    the packet is well formed (FY_MQTT_OK);
 *   FY_MQTT_NEED_MORE    (fy_mqtt_frame only) the bytes end before the packet does;
 *   a positive value     the MQTT 5 reason code the server answers or closes with
 *                        (FY_MQTT_RC_MALFORMED 0x81, FY_MQTT_RC_PROTOCOL_ERROR 0x82, 0x84, 0x85,
 *                        0x90, 0x95, ...). For 3.1/3.1.1 peers the same codes say why the
 *                        connection is closed; only CONNECT errors are answered with a CONNACK
 *                        (see fy_mqtt_connack_v3_code).
 * Every decoder takes an optional `const char **why`: when not NULL it is set, on error, to a
 * short static text for the log line ("will QoS 3"); it is left alone on success.
 *
 * Which error for which rule (MQTT 5 section 1.5, 2.2.2.2 and 4.13): a packet that cannot be
 * parsed, a property identifier unknown or not allowed in this packet, bad UTF-8, reserved bits
 * set or trailing bytes are Malformed (0x81); a property that appears twice, a property value
 * out of range (receive maximum 0, QoS 2 as maximum QoS, ...), packet id 0, a packet with no
 * entries where one is required are Protocol Errors (0x82). A topic name with wildcards in
 * PUBLISH or in a will is 0x90 (the codec checks it with fy_mqtt_topic_name_valid). Topic
 * filters in SUBSCRIBE/UNSUBSCRIBE are only checked for UTF-8: whether a filter is valid is
 * answered per entry (SUBACK 0x8F) by the caller with fy_mqtt_filter_valid.
 *
 * Encoders return FY_OK, -FY_EINVAL when a field cannot be encoded (a string over 65535 bytes,
 * QoS 3, a remaining length over 268435455, an unknown version) or -FY_ETOOBIG when the packet
 * exceeds max_packet; on failure `out` is left as it was. max_packet 0 means no limit. Encoders
 * of packets whose Reason String and User Properties are optional (CONNACK, the acks, SUBACK,
 * UNSUBACK, DISCONNECT, AUTH) drop those two first, as MQTT 5 requires, when the packet would
 * exceed max_packet; PUBLISH drops nothing (the caller must not send it at all). Encoders
 * never validate UTF-8 or topic syntax: that is the caller's data. Properties and v5-only
 * fields are ignored for versions 3 and 4. */
#ifndef FERRY_ADAPTERS_MQTT_MQTT_CODEC_H
#define FERRY_ADAPTERS_MQTT_MQTT_CODEC_H

#include "common/buf.h"
#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol versions (the CONNECT protocol level). */
#define FY_MQTT_V31 3  /* MQTT 3.1, protocol name "MQIsdp" */
#define FY_MQTT_V311 4 /* MQTT 3.1.1, protocol name "MQTT" */
#define FY_MQTT_V5 5   /* MQTT 5.0, protocol name "MQTT" */

#define FY_MQTT_OK 0
#define FY_MQTT_NEED_MORE (-1)

#define FY_MQTT_MAX_REMAINING 268435455u /* largest remaining length (4-byte varint) */
#define FY_MQTT_MAX_VBI 268435455u

/* Packet types (the high nibble of the first byte). */
typedef enum fy_mqtt_type {
    FY_MQTT_CONNECT = 1,
    FY_MQTT_CONNACK = 2,
    FY_MQTT_PUBLISH = 3,
    FY_MQTT_PUBACK = 4,
    FY_MQTT_PUBREC = 5,
    FY_MQTT_PUBREL = 6,
    FY_MQTT_PUBCOMP = 7,
    FY_MQTT_SUBSCRIBE = 8,
    FY_MQTT_SUBACK = 9,
    FY_MQTT_UNSUBSCRIBE = 10,
    FY_MQTT_UNSUBACK = 11,
    FY_MQTT_PINGREQ = 12,
    FY_MQTT_PINGRESP = 13,
    FY_MQTT_DISCONNECT = 14,
    FY_MQTT_AUTH = 15
} fy_mqtt_type;

/* MQTT 5 reason codes (section 2.4). The same byte value has several names where the spec
 * gives it several meanings. */
typedef enum fy_mqtt_reason {
    FY_MQTT_RC_SUCCESS = 0x00,
    FY_MQTT_RC_NORMAL_DISCONNECT = 0x00,
    FY_MQTT_RC_GRANTED_QOS0 = 0x00,
    FY_MQTT_RC_GRANTED_QOS1 = 0x01,
    FY_MQTT_RC_GRANTED_QOS2 = 0x02,
    FY_MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    FY_MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    FY_MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    FY_MQTT_RC_CONTINUE_AUTH = 0x18,
    FY_MQTT_RC_REAUTHENTICATE = 0x19,
    FY_MQTT_RC_UNSPECIFIED = 0x80,
    FY_MQTT_RC_MALFORMED = 0x81,
    FY_MQTT_RC_PROTOCOL_ERROR = 0x82,
    FY_MQTT_RC_IMPL_SPECIFIC = 0x83,
    FY_MQTT_RC_UNSUPPORTED_VERSION = 0x84,
    FY_MQTT_RC_CLIENT_ID_INVALID = 0x85,
    FY_MQTT_RC_BAD_USER_PASS = 0x86,
    FY_MQTT_RC_NOT_AUTHORIZED = 0x87,
    FY_MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    FY_MQTT_RC_SERVER_BUSY = 0x89,
    FY_MQTT_RC_BANNED = 0x8A,
    FY_MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    FY_MQTT_RC_BAD_AUTH_METHOD = 0x8C,
    FY_MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    FY_MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    FY_MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    FY_MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    FY_MQTT_RC_PACKET_ID_IN_USE = 0x91,
    FY_MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
    FY_MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
    FY_MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    FY_MQTT_RC_PACKET_TOO_LARGE = 0x95,
    FY_MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    FY_MQTT_RC_QUOTA_EXCEEDED = 0x97,
    FY_MQTT_RC_ADMIN_ACTION = 0x98,
    FY_MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    FY_MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    FY_MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    FY_MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    FY_MQTT_RC_SERVER_MOVED = 0x9D,
    FY_MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
    FY_MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    FY_MQTT_RC_MAX_CONNECT_TIME = 0xA0,
    FY_MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
    FY_MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2
} fy_mqtt_reason;

/* MQTT 3.1 / 3.1.1 CONNACK return codes. */
#define FY_MQTT_V3_ACCEPTED 0
#define FY_MQTT_V3_BAD_VERSION 1
#define FY_MQTT_V3_ID_REJECTED 2
#define FY_MQTT_V3_UNAVAILABLE 3
#define FY_MQTT_V3_BAD_USER_PASS 4
#define FY_MQTT_V3_NOT_AUTHORIZED 5

/* The 3.1.1 CONNACK return code for an MQTT 5 CONNACK reason code: 0x00 -> 0, 0x84 -> 1,
 * 0x85 -> 2, 0x86 -> 4, 0x87/0x8A/0x8C -> 5, every other failure (0x88 server unavailable,
 * 0x89 busy, 0x81, 0x82, 0x95, 0x9F, ...) -> 3. fy_mqtt_enc_connack applies it for versions 3
 * and 4, so callers always speak MQTT 5 reason codes. */
uint8_t fy_mqtt_connack_v3_code(uint8_t reason);
/* The reverse, used when decoding a 3.1.1 CONNACK: 0 -> 0x00, 1 -> 0x84, 2 -> 0x85,
 * 3 -> 0x88, 4 -> 0x86, 5 -> 0x87; returns -1 for the reserved codes 6..255. */
int fy_mqtt_connack_v5_reason(uint8_t code);

/* Short name of a packet type ("PUBLISH") or reason code ("Malformed Packet"); never NULL. */
const char *fy_mqtt_type_name(int type);
const char *fy_mqtt_reason_name(int reason);

/* ---- Framing ------------------------------------------------------------------------------ */

typedef struct fy_mqtt_frame_hdr {
    uint8_t type;       /* fy_mqtt_type */
    uint8_t flags;      /* low nibble of the first byte */
    uint8_t hdr_len;    /* 2..5: first byte + remaining-length varint */
    uint32_t remaining; /* remaining length */
    fy_slice body;      /* the remaining bytes (set only when the whole packet is present) */
} fy_mqtt_frame_hdr;

/* Parses the fixed header at p[0..len). Returns 0 when a whole packet is present (the packet
 * is hdr_len + remaining bytes long, body points into p); FY_MQTT_NEED_MORE when the fixed
 * header or the body is not complete yet; FY_MQTT_RC_MALFORMED for packet type 0, a remaining
 * length varint longer than 4 bytes or not minimal, reserved flag bits that are wrong for the
 * type (PUBREL, SUBSCRIBE and UNSUBSCRIBE need 0b0010, PUBLISH may not have QoS 3, the others
 * 0); FY_MQTT_RC_PACKET_TOO_LARGE when hdr_len + remaining exceeds max_packet (0: no limit),
 * reported as soon as the fixed header is complete, before the body arrives. On
 * FY_MQTT_NEED_MORE and on errors found after the header, out->type/flags/hdr_len/remaining are
 * filled as far as known. The version is not needed: framing is the same for all three. */
int fy_mqtt_frame(const uint8_t *p, size_t len, uint32_t max_packet, fy_mqtt_frame_hdr *out,
                  const char **why);

/* ---- Primitives --------------------------------------------------------------------------- */

/* True if p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) and holds no U+0000, as MQTT requires of every UTF-8 string. */
bool fy_mqtt_utf8_valid(const uint8_t *p, size_t n);

/* Reads a variable byte integer (1..4 bytes, minimal encoding). Returns 0 or
 * FY_MQTT_RC_MALFORMED (too long, not minimal, or the reader ran out; r->bad is set then). */
int fy_mqtt_get_vbi(fy_rd *r, uint32_t *v);
/* Reads a u16-length-prefixed UTF-8 string and validates it (fy_mqtt_utf8_valid). Returns 0 or
 * FY_MQTT_RC_MALFORMED. */
int fy_mqtt_get_str(fy_rd *r, fy_slice *s);
/* Reads u16-length-prefixed binary data. Returns 0 or FY_MQTT_RC_MALFORMED. */
int fy_mqtt_get_bin(fy_rd *r, fy_slice *s);

/* Bytes the varint encoding of v takes (1..4; v must be <= FY_MQTT_MAX_VBI). */
size_t fy_mqtt_vbi_size(uint32_t v);
/* Appends the varint encoding of v (v <= FY_MQTT_MAX_VBI). */
void fy_mqtt_put_vbi(fy_buf *out, uint32_t v);
/* Appends a u16 length and the bytes of s (s.len <= 65535: the caller checks). */
void fy_mqtt_put_str(fy_buf *out, fy_slice s);

/* ---- Properties (MQTT 5) ------------------------------------------------------------------ */

typedef enum fy_mqtt_prop_id {
    FY_MQTT_P_PAYLOAD_FORMAT = 0x01,
    FY_MQTT_P_MESSAGE_EXPIRY = 0x02,
    FY_MQTT_P_CONTENT_TYPE = 0x03,
    FY_MQTT_P_RESPONSE_TOPIC = 0x08,
    FY_MQTT_P_CORRELATION_DATA = 0x09,
    FY_MQTT_P_SUBSCRIPTION_ID = 0x0B,
    FY_MQTT_P_SESSION_EXPIRY = 0x11,
    FY_MQTT_P_ASSIGNED_CLIENT_ID = 0x12,
    FY_MQTT_P_SERVER_KEEP_ALIVE = 0x13,
    FY_MQTT_P_AUTH_METHOD = 0x15,
    FY_MQTT_P_AUTH_DATA = 0x16,
    FY_MQTT_P_REQUEST_PROBLEM_INFO = 0x17,
    FY_MQTT_P_WILL_DELAY = 0x18,
    FY_MQTT_P_REQUEST_RESPONSE_INFO = 0x19,
    FY_MQTT_P_RESPONSE_INFO = 0x1A,
    FY_MQTT_P_SERVER_REFERENCE = 0x1C,
    FY_MQTT_P_REASON_STRING = 0x1F,
    FY_MQTT_P_RECEIVE_MAXIMUM = 0x21,
    FY_MQTT_P_TOPIC_ALIAS_MAXIMUM = 0x22,
    FY_MQTT_P_TOPIC_ALIAS = 0x23,
    FY_MQTT_P_MAXIMUM_QOS = 0x24,
    FY_MQTT_P_RETAIN_AVAILABLE = 0x25,
    FY_MQTT_P_USER_PROPERTY = 0x26,
    FY_MQTT_P_MAXIMUM_PACKET_SIZE = 0x27,
    FY_MQTT_P_WILDCARD_SUB_AVAILABLE = 0x28,
    FY_MQTT_P_SUB_ID_AVAILABLE = 0x29,
    FY_MQTT_P_SHARED_SUB_AVAILABLE = 0x2A
} fy_mqtt_prop_id;

/* The bit of a property in fy_mqtt_props.present. */
#define FY_MQTT_PBIT(id) (UINT64_C(1) << (id))

/* Where a property block sits: each has its own set of allowed properties (MQTT 5 table
 * 2-4). PUBLISH_C2S is a PUBLISH from a client (no Subscription Identifier), PUBLISH_S2C one
 * from a server (Subscription Identifier may repeat); ACK covers PUBACK, PUBREC, PUBREL and
 * PUBCOMP; WILL is the will properties of CONNECT. */
typedef enum fy_mqtt_pctx {
    FY_MQTT_PCTX_CONNECT,
    FY_MQTT_PCTX_CONNACK,
    FY_MQTT_PCTX_PUBLISH_C2S,
    FY_MQTT_PCTX_PUBLISH_S2C,
    FY_MQTT_PCTX_ACK,
    FY_MQTT_PCTX_SUBSCRIBE,
    FY_MQTT_PCTX_SUBACK,
    FY_MQTT_PCTX_UNSUBSCRIBE,
    FY_MQTT_PCTX_UNSUBACK,
    FY_MQTT_PCTX_DISCONNECT,
    FY_MQTT_PCTX_AUTH,
    FY_MQTT_PCTX_WILL,
    FY_MQTT_PCTX_COUNT_
} fy_mqtt_pctx;

/* Every MQTT 5 property. A field means something only when its bit is in `present`. Slices
 * point into the decoded packet.
 *
 * User properties and subscription identifiers may occur several times, so they are not
 * copied out: after decoding, `raw` is the whole property block and fy_mqtt_user_props() /
 * fy_mqtt_sub_ids() walk it; n_user_props / n_sub_ids count them and sub_id is the first
 * subscription identifier.
 *
 * To encode, set the fields and `present` bits. User properties come from `user_props`
 * (2 * n_user_props slices: name0, value0, name1, value1, ...) when it is not NULL, else they
 * are copied from `raw`; subscription identifiers come from `sub_ids` (n_sub_ids values) when
 * it is not NULL, else from `raw` when n_sub_ids > 1, else `sub_id`. So a decoded block
 * re-encodes as it is, and a hand-built one needs no raw bytes. */
typedef struct fy_mqtt_props {
    uint64_t present; /* FY_MQTT_PBIT(id) for each property present */
    uint8_t payload_format;
    uint32_t message_expiry;
    fy_slice content_type;
    fy_slice response_topic;
    fy_slice correlation_data;
    uint32_t sub_id; /* the first one */
    uint32_t n_sub_ids;
    uint32_t session_expiry;
    fy_slice assigned_client_id;
    uint16_t server_keep_alive;
    fy_slice auth_method;
    fy_slice auth_data;
    uint8_t request_problem_info;
    uint32_t will_delay;
    uint8_t request_response_info;
    fy_slice response_info;
    fy_slice server_reference;
    fy_slice reason_string;
    uint16_t receive_maximum;
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint32_t n_user_props;
    uint32_t maximum_packet_size;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;
    fy_slice raw;               /* decoded: the property bytes, without their length */
    const fy_slice *user_props; /* encode only, see above */
    const uint32_t *sub_ids;    /* encode only, see above */
} fy_mqtt_props;

static inline bool fy_mqtt_props_has(const fy_mqtt_props *p, fy_mqtt_prop_id id)
{
    return (p->present & FY_MQTT_PBIT(id)) != 0;
}

/* Reads a property block (varint length, then properties) from r for the context ctx into
 * *out (zeroed first). Returns 0; FY_MQTT_RC_MALFORMED when the length overruns r, a property
 * is unknown or not allowed in ctx, a value is cut short, or a string is not valid UTF-8;
 * FY_MQTT_RC_PROTOCOL_ERROR for a property given twice (only User Property, and Subscription
 * Identifier in FY_MQTT_PCTX_PUBLISH_S2C, may repeat) or a value out of range: payload format,
 * request problem/response information, maximum QoS, retain/wildcard/subscription id/shared
 * available not 0 or 1; receive maximum, maximum packet size, topic alias or subscription
 * identifier 0. */
int fy_mqtt_props_decode(fy_rd *r, fy_mqtt_pctx ctx, fy_mqtt_props *out, const char **why);

/* Bytes the property block of p takes without / with its varint length prefix. p may be NULL
 * (an empty block: 0 / 1 bytes). Returns SIZE_MAX if the block cannot be encoded (a string
 * over 65535 bytes, a block over FY_MQTT_MAX_VBI). */
size_t fy_mqtt_props_size(const fy_mqtt_props *p);
size_t fy_mqtt_props_block_size(const fy_mqtt_props *p);

/* Appends the property block of p (length prefix included; p NULL = empty block). Properties
 * are written in identifier order, subscription identifiers and user properties last. Returns FY_OK
 * or -FY_EINVAL (out unchanged) if fy_mqtt_props_size would return SIZE_MAX. */
int fy_mqtt_props_encode(fy_buf *out, const fy_mqtt_props *p);

/* Clears what MQTT 5 lets a sender leave out to respect the peer's Maximum Packet Size: the
 * Reason String and the User Properties. */
void fy_mqtt_props_drop_optional(fy_mqtt_props *p);

/* Walks the repeated properties of a decoded block:
 *   fy_mqtt_prop_iter it = fy_mqtt_user_props(&props);
 *   while (fy_mqtt_user_prop_next(&it, &name, &value)) ...
 * The block was validated when it was decoded, so iteration cannot fail. */
typedef struct fy_mqtt_prop_iter {
    fy_rd rd;
} fy_mqtt_prop_iter;

fy_mqtt_prop_iter fy_mqtt_user_props(const fy_mqtt_props *p);
bool fy_mqtt_user_prop_next(fy_mqtt_prop_iter *it, fy_slice *name, fy_slice *value);
fy_mqtt_prop_iter fy_mqtt_sub_ids(const fy_mqtt_props *p);
bool fy_mqtt_sub_id_next(fy_mqtt_prop_iter *it, uint32_t *id);

/* ---- CONNECT, CONNACK --------------------------------------------------------------------- */

typedef struct fy_mqtt_connect {
    uint8_t version; /* 3, 4 or 5: the protocol level */
    bool clean;      /* clean session (3.x) / clean start (5) */
    uint16_t keepalive;
    fy_slice client_id;
    fy_mqtt_props props;
    bool will;
    uint8_t will_qos;
    bool will_retain;
    fy_slice will_topic;
    fy_slice will_payload;
    fy_mqtt_props will_props;
    bool has_username;
    fy_slice username;
    bool has_password;
    fy_slice password;
} fy_mqtt_connect;

/* Decodes a CONNECT (h from fy_mqtt_frame, body complete); the version comes from the packet.
 * Returns 0, or:
 *   FY_MQTT_RC_UNSUPPORTED_VERSION (0x84): the name is "MQTT" with a level other than 4 or 5,
 *     or "MQIsdp" with a level other than 3. out->version holds the level read: answer with
 *     fy_mqtt_enc_connack(version 4, reason 0x84), i.e. the 3.1.1 return code 1, and close.
 *   FY_MQTT_RC_PROTOCOL_ERROR: another protocol name (close without CONNACK; out->version is 0),
 *     a password without a user name in 3.1/3.1.1, a property error;
 *   FY_MQTT_RC_MALFORMED: reserved flag bit 0 set, will QoS 3, will QoS or retain without the
 *     will flag, bad UTF-8, a field cut short, trailing bytes;
 *   FY_MQTT_RC_TOPIC_NAME_INVALID: a will topic that is empty or holds '+' or '#';
 *   FY_MQTT_RC_CLIENT_ID_INVALID: an empty client id in 3.1, or in 3.1.1 without clean
 *     session. Every field is filled in this case (the packet parsed completely).
 * Once the protocol name and level are read and the name is known, out->version is the level
 * read, whatever the result, so the caller knows which CONNACK format to answer with; it is 0
 * when the packet ends before the level or the name is unknown (close without a CONNACK). */
int fy_mqtt_decode_connect(const fy_mqtt_frame_hdr *h, fy_mqtt_connect *out, const char **why);

/* Appends a CONNECT for c->version (3: "MQIsdp", 4 and 5: "MQTT"). Flags follow the fields:
 * the will QoS/retain are written only with c->will; the user name/password only with their
 * has_ flags; props and will_props only for version 5. */
int fy_mqtt_enc_connect(fy_buf *out, const fy_mqtt_connect *c);

typedef struct fy_mqtt_connack {
    bool session_present;
    uint8_t reason; /* an MQTT 5 reason code, also for versions 3 and 4 */
    fy_mqtt_props props;
} fy_mqtt_connack;

/* Decodes a CONNACK for version (3, 4 or 5). A 3.x return code is mapped to the MQTT 5 reason
 * (fy_mqtt_connack_v5_reason). Returns 0; FY_MQTT_RC_MALFORMED for reserved acknowledge flags,
 * a 3.x length other than 2, a 3.x code over 5, a v5 reason that is neither 0 nor >= 0x80, or a
 * property error; FY_MQTT_RC_PROTOCOL_ERROR for session present with a failure code. */
int fy_mqtt_decode_connack(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_connack *out,
                           const char **why);

/* Appends a CONNACK; for versions 3 and 4 the reason is mapped with fy_mqtt_connack_v3_code. */
int fy_mqtt_enc_connack(fy_buf *out, int version, const fy_mqtt_connack *c, uint32_t max_packet);

/* ---- PUBLISH and its acknowledgements ----------------------------------------------------- */

typedef struct fy_mqtt_publish {
    bool dup;
    uint8_t qos;
    bool retain;
    fy_slice topic;     /* may be empty in v5 when props carry a topic alias */
    uint16_t packet_id; /* 0 for QoS 0 */
    fy_mqtt_props props;
    fy_slice payload;
} fy_mqtt_publish;

/* Decodes a PUBLISH for version. from_server says who sent it: a client's PUBLISH may not
 * carry a Subscription Identifier, a server's may carry several. Returns 0, or
 * FY_MQTT_RC_MALFORMED for QoS 3, DUP with QoS 0, bad UTF-8 in the topic, an empty topic in
 * 3.x, a field cut short, a property error; FY_MQTT_RC_PROTOCOL_ERROR for packet id 0 with
 * QoS > 0, topic alias 0, an empty topic without a topic alias (v5), a property error;
 * FY_MQTT_RC_TOPIC_NAME_INVALID for a topic with '+' or '#'. Whether a topic alias is within
 * the announced maximum (0x94) is the caller's check. The payload is the rest of the body; its
 * UTF-8 check under payload format 1 (0x99) is the caller's choice. */
int fy_mqtt_decode_publish(const fy_mqtt_frame_hdr *h, int version, bool from_server,
                           fy_mqtt_publish *out, const char **why);

/* Appends a whole PUBLISH (p->payload included). */
int fy_mqtt_enc_publish(fy_buf *out, int version, const fy_mqtt_publish *p, uint32_t max_packet);

/* Appends a PUBLISH without its payload: the fixed header (whose remaining length counts
 * payload_len more bytes), the topic, the packet id and the properties; p->payload is ignored.
 * The caller appends exactly payload_len bytes next, e.g. straight from a stored record.
 * -FY_ETOOBIG when the whole packet would exceed max_packet (the caller then must not send it:
 * MQTT 5 says to discard the message for that client). */
int fy_mqtt_enc_publish_head(fy_buf *out, int version, const fy_mqtt_publish *p, size_t payload_len,
                             uint32_t max_packet);

/* Total bytes of the PUBLISH p with a payload of payload_len bytes, or SIZE_MAX if it cannot
 * be encoded. */
size_t fy_mqtt_publish_size(int version, const fy_mqtt_publish *p, size_t payload_len);

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
typedef struct fy_mqtt_ack {
    uint16_t packet_id;
    uint8_t reason; /* 0 in 3.x */
    fy_mqtt_props props;
} fy_mqtt_ack;

/* Decodes a PUBACK, PUBREC, PUBREL or PUBCOMP (h->type says which). 3.x: exactly a packet id.
 * v5: remaining length 2 means reason 0 and no properties, 3 a reason and no properties.
 * Returns 0; FY_MQTT_RC_MALFORMED for a wrong length, a field cut short or a property error;
 * FY_MQTT_RC_PROTOCOL_ERROR for packet id 0 or a reason code not defined for this type
 * (PUBACK/PUBREC: 0x00 0x10 0x80 0x83 0x87 0x90 0x91 0x97 0x99; PUBREL/PUBCOMP: 0x00 0x92). */
int fy_mqtt_decode_ack(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_ack *out, const char **why);

/* Appends a PUBACK/PUBREC/PUBREL/PUBCOMP of type. v5 leaves out the reason and properties when
 * the reason is 0 and there are no properties, and the properties when there are none. */
int fy_mqtt_enc_ack(fy_buf *out, int version, uint8_t type, const fy_mqtt_ack *a,
                    uint32_t max_packet);

/* ---- SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK --------------------------------------------- */

typedef struct fy_mqtt_sub_entry {
    fy_slice filter;
    uint8_t qos;
    bool no_local;            /* v5 */
    bool retain_as_published; /* v5 */
    uint8_t retain_handling;  /* v5: 0, 1 or 2 */
} fy_mqtt_sub_entry;

/* A decoded SUBSCRIBE (or UNSUBSCRIBE): entries are validated and walked with the iterators. */
typedef struct fy_mqtt_subscribe {
    uint16_t packet_id;
    fy_mqtt_props props; /* v5: subscription identifier and user properties */
    uint32_t count;      /* entries, >= 1 */
    fy_slice entries;    /* the payload */
    uint8_t version;
} fy_mqtt_subscribe;

typedef struct fy_mqtt_sub_iter {
    fy_rd rd;
    uint8_t version;
} fy_mqtt_sub_iter;

/* Decodes a SUBSCRIBE. Returns 0; FY_MQTT_RC_MALFORMED for a field cut short, bad UTF-8 in a
 * filter, QoS 3, retain handling 3, reserved option bits (bits 6-7 in v5, bits 2-7 in 3.x) or
 * a property error; FY_MQTT_RC_PROTOCOL_ERROR for packet id 0, no entries, No Local on a
 * shared subscription (v5) or a property error. Filters are not checked beyond UTF-8. */
int fy_mqtt_decode_subscribe(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_subscribe *out,
                             const char **why);
fy_mqtt_sub_iter fy_mqtt_sub_entries(const fy_mqtt_subscribe *s);
bool fy_mqtt_sub_next(fy_mqtt_sub_iter *it, fy_mqtt_sub_entry *e);

/* Appends a SUBSCRIBE with the n entries e (n >= 1, else -FY_EINVAL). props: v5 only, may be
 * NULL. For 3.x only filter and qos are written. */
int fy_mqtt_enc_subscribe(fy_buf *out, int version, uint16_t packet_id, const fy_mqtt_props *props,
                          const fy_mqtt_sub_entry *e, size_t n);

/* Decodes an UNSUBSCRIBE into the same struct; the iterator yields filters. Returns 0;
 * FY_MQTT_RC_MALFORMED for a field cut short, bad UTF-8 or a property error;
 * FY_MQTT_RC_PROTOCOL_ERROR for packet id 0 or no filters. */
int fy_mqtt_decode_unsubscribe(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_subscribe *out,
                               const char **why);
bool fy_mqtt_unsub_next(fy_mqtt_sub_iter *it, fy_slice *filter);

/* Appends an UNSUBSCRIBE with the n filters f (n >= 1). */
int fy_mqtt_enc_unsubscribe(fy_buf *out, int version, uint16_t packet_id,
                            const fy_mqtt_props *props, const fy_slice *f, size_t n);

/* SUBACK and UNSUBACK: one reason code per entry, in order. A 3.x UNSUBACK has none. */
typedef struct fy_mqtt_suback {
    uint16_t packet_id;
    fy_mqtt_props props;
    fy_slice reasons;
} fy_mqtt_suback;

/* Decodes a SUBACK or UNSUBACK (h->type says which). Returns 0; FY_MQTT_RC_MALFORMED for a
 * field cut short, a property error, a 3.x UNSUBACK longer than 2 bytes;
 * FY_MQTT_RC_PROTOCOL_ERROR for no reason codes (SUBACK, v5 UNSUBACK) or a code not defined
 * for the packet (3.x SUBACK: 0 1 2 0x80; v5 SUBACK: 0 1 2 0x80 0x83 0x87 0x8F 0x91 0x97 0x9E
 * 0xA1 0xA2; UNSUBACK: 0x00 0x11 0x80 0x83 0x87 0x8F 0x91). */
int fy_mqtt_decode_suback(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_suback *out,
                          const char **why);

/* Appends a SUBACK (reasons: one byte per entry, at least one) / an UNSUBACK (3.x: reasons are
 * ignored; v5: at least one). The SUBACK codes are written as given, also for 3.x (pass
 * 0x80 for a refused entry there). */
int fy_mqtt_enc_suback(fy_buf *out, int version, const fy_mqtt_suback *s, uint32_t max_packet);
int fy_mqtt_enc_unsuback(fy_buf *out, int version, const fy_mqtt_suback *s, uint32_t max_packet);

/* ---- PINGREQ, PINGRESP, DISCONNECT, AUTH -------------------------------------------------- */

/* Checks a PINGREQ or PINGRESP: 0, or FY_MQTT_RC_MALFORMED if the remaining length is not 0. */
int fy_mqtt_decode_ping(const fy_mqtt_frame_hdr *h, const char **why);
void fy_mqtt_enc_pingreq(fy_buf *out);
void fy_mqtt_enc_pingresp(fy_buf *out);

typedef struct fy_mqtt_disconnect {
    uint8_t reason; /* 0 in 3.x */
    fy_mqtt_props props;
} fy_mqtt_disconnect;

/* Decodes a DISCONNECT. 3.x: remaining length 0. v5: length 0 is reason 0, length 1 a reason
 * without properties. Returns 0; FY_MQTT_RC_MALFORMED for a wrong length, a field cut short, a
 * property error; FY_MQTT_RC_PROTOCOL_ERROR for a reason that is neither 0x00, 0x04 nor >= 0x80
 * or a property error. Whether a client may send Session Expiry here (not when it was 0 in
 * CONNECT) is the caller's check. */
int fy_mqtt_decode_disconnect(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_disconnect *out,
                              const char **why);
/* Appends a DISCONNECT (3.x: just the fixed header; v5: the short forms when possible). */
int fy_mqtt_enc_disconnect(fy_buf *out, int version, const fy_mqtt_disconnect *d,
                           uint32_t max_packet);

typedef struct fy_mqtt_auth {
    uint8_t reason; /* 0x00, 0x18 or 0x19 */
    fy_mqtt_props props;
} fy_mqtt_auth;

/* Decodes an AUTH (v5 only: FY_MQTT_RC_PROTOCOL_ERROR for 3.x, where the type is reserved).
 * Length 0 means reason 0. Returns 0; FY_MQTT_RC_MALFORMED for a field cut short or a
 * property error; FY_MQTT_RC_PROTOCOL_ERROR for a reason other than 0x00, 0x18, 0x19. */
int fy_mqtt_decode_auth(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_auth *out,
                        const char **why);
/* Appends an AUTH (v5 only, -FY_EINVAL otherwise); length 0 when reason 0 and no props. */
int fy_mqtt_enc_auth(fy_buf *out, int version, const fy_mqtt_auth *a, uint32_t max_packet);

/* ---- Helpers shared by the codec files (not for callers) ---------------------------------- */

/* Starts a packet in out: returns the offset where it begins. fy_mqtt_pkt_end writes the fixed
 * header with first byte b0 and a remaining length of the body written since plus extra bytes
 * the caller appends later, checks max_packet, and returns FY_OK, -FY_EINVAL or -FY_ETOOBIG
 * (out->len back to start on failure). */
size_t fy_mqtt_pkt_begin(fy_buf *out);
int fy_mqtt_pkt_end(fy_buf *out, size_t start, uint8_t b0, size_t extra, uint32_t max_packet);

#endif
