-- SPDX-License-Identifier: MIT
-- Where a topic stands, for a node that has just subscribed to its channel (or
-- subscribed again after losing Redis): the epoch, the last seq, and the newest
-- messages of the history, so the node can fill what it missed and serve
-- resumes from what Redis remembers. Messages with seq up to the one returned
-- are here; later ones arrive on the channel, which the node joined first.
--
-- KEYS[1]  {T}:meta, KEYS[2]  {T}:log (as redis_publish.lua)
-- ARGV[1]  the oldest seq wanted (0: none, only the position)
-- ARGV[2]  at most this many, the newest (absent: no bound; 0: none)
-- ARGV[3]  the asking node's last seq of the topic, ARGV[4] its epoch (absent:
--          it does not follow the topic yet)
-- Returns {seq, epoch, {seq1, payload1, seq2, payload2, ...}}, oldest first.
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- Fixed now, so every node that asks before the first publish agrees.
  local t = redis.call('TIME')
  epoch = string.sub(redis.sha1hex(t[1] .. '.' .. t[2] .. KEYS[1]), 1, 16)
  -- A stream left from a run whose meta was lost holds other messages under
  -- the seqs this run will give: it goes.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
-- A node that follows the topic says where it is (ARGV[3], ARGV[4]). Past
-- Redis' seq in Redis' own epoch means Redis came back from an older copy of
-- its data: the seqs it would give next were given to other messages already.
-- A new epoch makes every subscriber start counting again, told.
local known = tonumber(ARGV[3] or '0')
if ARGV[4] == epoch and known > seq then
  local t = redis.call('TIME')
  epoch = string.sub(redis.sha1hex(t[1] .. '.' .. t[2] .. KEYS[1] .. ':' .. known), 1, 16)
  redis.call('DEL', KEYS[2]) -- its seqs belong to the run that ended
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local from = tonumber(ARGV[1])
-- A node that knew another epoch missed this one from its start.
if ARGV[4] and ARGV[4] ~= epoch then from = 1 end
local count = tonumber(ARGV[2] or '-1')
if from > 0 and count >= 0 and from < seq - count + 1 then from = seq - count + 1 end
local out = {}
if from > 0 and from <= seq and count ~= 0 then
  local entries = redis.call('XRANGE', KEYS[2], from .. '-0', seq .. '-0')
  for _, e in ipairs(entries) do
    local id = e[1]
    out[#out + 1] = tonumber(string.sub(id, 1, string.find(id, '-', 1, true) - 1))
    out[#out + 1] = e[2][2]
  end
end
return {seq, epoch, out}
