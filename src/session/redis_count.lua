-- SPDX-License-Identifier: MIT
-- Subscriber counts of a topic across nodes, one field per node that expires
-- unless the node renews it, so a dead node's count disappears by itself
-- (Redis 7.0 has no per-field expiry; the expiry time is kept in the value).
--
-- KEYS[1]  {T}:nodes  hash: node id -> "<count>:<expires, ms since the epoch>"
-- ARGV[1]  a node id, or "" only to read
-- ARGV[2]  that node's subscriber count now (0 removes its field)
-- ARGV[3]  how long the field lives without renewal, in ms
-- Returns {total, node1, count1, node2, count2, ...} over live fields, after
-- removing the expired ones.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then
  local n = tonumber(ARGV[2])
  if n > 0 then
    redis.call('HSET', KEYS[1], ARGV[1], n .. ':' .. (now + tonumber(ARGV[3])))
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
local all = redis.call('HGETALL', KEYS[1])
local out = {0}
for i = 1, #all, 2 do
  local c = string.find(all[i + 1], ':', 1, true)
  local n = tonumber(string.sub(all[i + 1], 1, c - 1))
  local exp = tonumber(string.sub(all[i + 1], c + 1))
  if exp <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[1] = out[1] + n
    out[#out + 1] = all[i]
    out[#out + 1] = n
  end
end
return out
