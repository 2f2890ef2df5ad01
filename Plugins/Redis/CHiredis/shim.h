// hiredis, the Redis client: a synchronous context, commands as argument vectors, replies.
#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>

static inline redisReply *cdes_redis_command(redisContext *c, int argc, const char **argv, const size_t *lengths) {
    return (redisReply *)redisCommandArgv(c, argc, argv, lengths);
}
#endif
