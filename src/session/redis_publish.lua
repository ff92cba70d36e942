-- SPDX-License-Identifier: MIT
-- ringcast's publish, run atomically by Redis: the topic's next sequence
-- number, its bounded history, and the message to every node that subscribes,
-- in one round trip. Every node thus sees the same seq for the same message
-- whichever node it was published on, and the channel carries the messages in
-- seq order.
--
-- KEYS[1]  {T}:meta  hash: seq (the last one given), epoch (16 hex digits)
-- KEYS[2]  {T}:log   stream of the newest messages, entry ID "<seq>-0", field p
-- ARGV[1]  the channel ({T} in the keys' hash slot, for Redis Cluster)
-- ARGV[2]  the payload
-- ARGV[3]  how many messages the stream keeps (0: no stream)
-- ARGV[4]  "PUBLISH", or "SPUBLISH" for Redis Cluster's sharded pub/sub
-- Returns {seq, epoch}. The channel message is "<epoch>:<seq>:<payload>".
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- A new run of sequence numbers (a new topic, or Redis lost its data): a
  -- name no earlier run had, from the server's clock and the topic.
  local t = redis.call('TIME')
  epoch = string.sub(redis.sha1hex(t[1] .. '.' .. t[2] .. KEYS[1]), 1, 16)
  -- A stream left from a run whose meta was lost (evicted, deleted) holds
  -- other messages under the seqs this run will give: it goes.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local keep = tonumber(ARGV[3])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', keep, seq .. '-0', 'p', ARGV[2])
end
redis.call(ARGV[4], ARGV[1], epoch .. ':' .. seq .. ':' .. ARGV[2])
return {seq, epoch}
