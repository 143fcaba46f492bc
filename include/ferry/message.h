/* SPDX-License-Identifier: Apache-2.0 */
/** @file
 * libferry messages: one opaque fy_message holds a topic, an optional tag, keys, string
 * properties and a body, plus the fields the broker assigns (queue, offset, store time, message
 * id). Producers build one with fy_message_new() and the setters; consumers receive them from
 * fy_consumer_poll() or a consume callback. Every string is copied in; every getter returns a
 * pointer into the message, valid until the message is changed or freed.
 *
 * Threads: a message is a plain value with no locks; use each one from one thread at a time.
 */
#ifndef FERRY_MESSAGE_H
#define FERRY_MESSAGE_H

#include "ferry/errors.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A message: opaque; created by fy_message_new(), or by the library for received messages. */
typedef struct fy_message fy_message;

/** Length of a message id as text: 32 lowercase hex characters (without the NUL). */
#define FY_MESSAGE_ID_LEN 32

/** Creates an empty message for @p topic (copied; may be NULL and set later with
 * fy_message_set_topic()). Born time and born host are filled in when it is sent.
 * @return the message, owned by the caller (free it with fy_message_free()), or NULL when out
 * of memory. */
fy_message *fy_message_new(const char *topic);

/** Frees a message and everything it holds. NULL-safe. A received message may be freed before
 * or after it is acknowledged: fy_consumer_ack() only needs it for the duration of the call. */
void fy_message_free(fy_message *msg);

/** Returns a deep copy of @p msg (including the delivery it came from, so the copy can be
 * acknowledged instead of the original), or NULL when out of memory. The caller owns it. */
fy_message *fy_message_dup(const fy_message *msg);

/* ---- Setters: each copies its arguments and returns FY_OK, -FY_EINVAL or -FY_ENOMEM (the
 * message is unchanged on error). ------------------------------------------------------------ */

/** Sets the topic. -FY_EINVAL if @p topic is NULL, empty or longer than 65535 bytes. The broker
 * applies the naming rules ([A-Za-z0-9_.%-]{1,127}) when the message is sent. */
int fy_message_set_topic(fy_message *msg, const char *topic);

/** Sets the tag (one string, matched by tag filters such as "TagA || TagB"); NULL or "" removes
 * it. -FY_EINVAL if longer than 65535 bytes. */
int fy_message_set_tag(fy_message *msg, const char *tag);

/** Adds a key (an application identifier indexed by the broker for queries). Keys keep their
 * order; duplicates are kept. -FY_EINVAL if @p key is NULL, empty or longer than 65535 bytes, or
 * if the message already has 65535 keys. */
int fy_message_add_key(fy_message *msg, const char *key);

/** Removes every key. Always FY_OK. */
int fy_message_clear_keys(fy_message *msg);

/** Sets property @p name to @p value, replacing an earlier value; a NULL @p value removes the
 * property. -FY_EINVAL if @p name is NULL, empty or longer than 65535 bytes, or if the message
 * already has 65535 properties. */
int fy_message_set_property(fy_message *msg, const char *name, const char *value);

/** Sets the body to a copy of the @p len bytes at @p body (@p body may be NULL when @p len is
 * 0). -FY_EINVAL if @p len is over 2 GiB; the broker refuses bodies over its max_message_size
 * (4 MiB by default) with -FY_ETOOBIG when the message is sent. */
int fy_message_set_body(fy_message *msg, const void *body, size_t len);

/** Sets the sharding key: messages with the same key go to the same queue, in order. NULL or ""
 * removes it (queues are then chosen round robin). -FY_EINVAL if longer than 65535 bytes. */
int fy_message_set_sharding_key(fy_message *msg, const char *key);

/** Delays delivery until @p ms (ms since the epoch): the broker stores the message at once and
 * appends it to its topic when due (property TIMER_DELIVER_MS). FY_OK or -FY_ENOMEM. */
int fy_message_set_deliver_at(fy_message *msg, uint64_t ms);
/** Delays delivery by @p ms from when the broker receives it (property TIMER_DELAY_MS). */
int fy_message_set_delay(fy_message *msg, uint64_t ms);
/** Delays delivery by the broker's delay level @p level (1-based; RocketMQ's 1s 5s 10s 30s 1m
 * ... 2h by default, configurable with delay_levels; property DELAY). */
int fy_message_set_delay_level(fy_message *msg, uint32_t level);

/* ---- Getters: strings are NUL-terminated and owned by the message; never NULL unless said.
 * ---------------------------------------------------------------------------------------- */

/** The topic, or "" if none was set. */
const char *fy_message_topic(const fy_message *msg);
/** The tag, or "" if the message has none. */
const char *fy_message_tag(const fy_message *msg);
/** Number of keys. */
size_t fy_message_key_count(const fy_message *msg);
/** Key @p i (0-based), or NULL if @p i is out of range. */
const char *fy_message_key_at(const fy_message *msg, size_t i);
/** Value of property @p name, or NULL if the message has no such property. */
const char *fy_message_property(const fy_message *msg, const char *name);
/** Number of properties. */
size_t fy_message_property_count(const fy_message *msg);
/** Property @p i (0-based, in the order they were first set or received): sets *name and *value
 * (either pointer may be NULL) and returns FY_OK, or -FY_EINVAL if @p i is out of range. */
int fy_message_property_at(const fy_message *msg, size_t i, const char **name, const char **value);
/** The body: returns a pointer to it (NULL when empty) and sets *len (if @p len is not NULL). */
const void *fy_message_body(const fy_message *msg, size_t *len);
/** The sharding key, or "" if none. (Received messages do not carry it.) */
const char *fy_message_sharding_key(const fy_message *msg);
/** The born host: the producer's address as "ip:port", set when the message is sent; "" before. */
const char *fy_message_born_host(const fy_message *msg);
/** Born time, ms since the Unix epoch (set by the producer when sending; 0 before). */
uint64_t fy_message_born_ms(const fy_message *msg);
/** Store time, ms since the Unix epoch, set by the broker (0 for a message not yet stored). */
uint64_t fy_message_store_ms(const fy_message *msg);
/** The queue the broker stored the message in, or -1 for a message not yet stored. */
int64_t fy_message_queue_id(const fy_message *msg);
/** The message's offset in its queue, or -1 for a message not yet stored. */
int64_t fy_message_queue_offset(const fy_message *msg);
/** How many times the message was delivered again after a nack or an ack timeout. */
uint32_t fy_message_reconsume_count(const fy_message *msg);
/** The message id as 32 lowercase hex characters, or "" when unknown (not yet stored, or a
 * delivered message whose topic id the client could not learn). */
const char *fy_message_id(const fy_message *msg);

/** Splits a message id (32 hex characters, either case) into its parts; any out pointer may be
 * NULL. @return FY_OK, or -FY_EINVAL if @p id is NULL or not exactly 32 hex characters. */
int fy_message_id_parse(const char *id, uint16_t *broker_id, uint32_t *topic_id, uint32_t *queue_id,
                        uint64_t *queue_offset);

#ifdef __cplusplus
}
#endif

#endif
