/* survey: the public pages and the machine route of ncc-sms that are not one
 * JSON request each (docs/sms.md): the residents' satisfaction survey
 * GET|POST /s/{token} (outside /api/v1 and the staff allow-list, no session,
 * the token is the authority) and the SMS provider's status callbacks
 * POST /api/v1/sms/receipts, signed with NCC_SMS_RECEIPT_SECRET in
 * X-NCC-Signature (ncc/webhook.h), as a form (the Twilio callback fields
 * MessageSid, MessageStatus, ErrorCode) or as JSON. */
#ifndef GW_SURVEY_H
#define GW_SURVEY_H

#include <civetweb.h>

#include "api.h"

/* Registers both handlers on a listener; reads NCC_SMS_RECEIPT_SECRET (up to
 * four, comma-separated, for a rotation) the first time. */
void gw_survey_register(struct mg_context *ctx, gw_api_t *api);

#endif
