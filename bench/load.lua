-- wrk script of `python -m bench`: sends precomputed requests and checks every reply.
--
--   wrk -t1 -c16 -d10s -s bench/load.lua URL -- DATA MODE ROUTE AESKEY OUTDIR THREADS CYCLE [RATE]
--
-- DATA is written by bench/wrk.py: a filler request, then chains. A chain is
-- one user's requests, sent in order, each only after the reply to the one
-- before (as a person types the next answer after reading the last reply).
-- Chains whose user got a reply go first; fresh chains are taken in file
-- order. Every request is sent once (CYCLE=1 starts the file again, for
-- idempotent GETs only).
--
-- MODE  bot: check each reply (its status, its expected words, who it goes to)
--       bare: the bare handler's fixed reply; the same parsing, no verdict
-- ROUTE to: the reply's ToUserName names the user it answers (chat)
--       fifo: the oldest request in flight (pages, the bare handler)
-- AESKEY hex of the EncodingAESKey's 32 bytes, or "-": safe-mode replies are
--       decrypted (AES-256-CBC through the libcrypto wrk links) before reading.
-- RATE  requests per second for the whole run, shared evenly by wrk's threads;
--       0 or absent: unpaced (each connection sends as soon as its last reply
--       came). Paced, each thread keeps a schedule of slots RATE/THREADS apart
--       and a free connection waits (wrk's delay()) for the next free slot;
--       a schedule more than a second behind starts again from now, so a stall
--       is not followed by a burst. The filler is not paced.
--
-- When every chain is done, the script prints "@@drained" (the harness then
-- ends wrk with SIGINT); until then a connection with nothing to send sends
-- the filler (GET /healthz) every 20 ms, counted apart. A run whose chains
-- ran dry is not a measurement (the harness redoes it with more).
-- done() prints "@@summary {json}".

local ffi = require("ffi")

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- thread state --------------------------------------------------------------

local chains, filler = {}, ""
-- queues are tables with explicit head and tail: `#` is undefined once the head is cleared
local fresh, cont, cont_head, cont_tail = 1, {}, 1, 0
local by_user, fifo, fifo_head, fifo_tail = {}, {}, 1, 0
local inflight, filler_inflight, drained_said = 0, 0, false
local mode, route, cycle, outdir
local notes, evidence, captures = 0, nil, nil
local decrypt = nil
local interval_ms, next_slot_ms = 0, nil -- pacing: ms between slots, and the next free slot
local BEHIND_MS = 1000 -- a schedule further behind than this starts again from now

local function add(key, n)
  stats[key] = (stats[key] or 0) + (n or 1)
end

local function load_data(path, my_tid, nthreads)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  local function line()
    local nl = data:find("\n", pos, true)
    local text = data:sub(pos, nl - 1)
    pos = nl + 1
    return text
  end
  local function bytes(n)
    local text = data:sub(pos, pos + n - 1)
    pos = pos + n
    return text
  end
  assert(line() == "GBENCH 1", "not a bench data file")
  filler = bytes(tonumber(line():match("^F (%d+)$")))
  local index = 0
  while pos <= #data do
    local n, ulen = line():match("^C (%d+) (%d+)$")
    local user = bytes(tonumber(ulen))
    local chain = { user = user, reqs = {}, expects = {}, captures = {}, next = 1 }
    for s = 1, tonumber(n) do
      local r, e, c = line():match("^S (%d+) (%d+) (%d+)$")
      chain.reqs[s] = bytes(tonumber(r))
      chain.expects[s] = bytes(tonumber(e))
      chain.captures[s] = bytes(tonumber(c))
    end
    if index % nthreads == my_tid then
      chains[#chains + 1] = chain
    end
    index = index + 1
  end
end

local function aes_decryptor(hexkey)
  ffi.cdef([[
    typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
    typedef struct evp_cipher_st EVP_CIPHER;
    EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
    int EVP_CIPHER_CTX_reset(EVP_CIPHER_CTX *c);
    const EVP_CIPHER *EVP_aes_256_cbc(void);
    int EVP_DecryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, void *impl,
                           const unsigned char *key, const unsigned char *iv);
    int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX *c, int pad);
    int EVP_DecryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
                          const unsigned char *in, int inl);
    int EVP_DecryptFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *outm, int *outl);
    int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
  ]])
  local ok, C = pcall(function()
    local _ = ffi.C.EVP_aes_256_cbc
    return ffi.C
  end)
  if not ok then
    C = ffi.load("crypto")
  end
  local raw = hexkey:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
  local key = ffi.new("unsigned char[32]")
  ffi.copy(key, raw, 32)
  local ctx, cipher, outl = C.EVP_CIPHER_CTX_new(), C.EVP_aes_256_cbc(), ffi.new("int[1]")
  return function(body)
    local enc = body:match("<Encrypt><!%[CDATA%[(.-)%]%]></Encrypt>")
    if not enc then
      return nil
    end
    local buf = ffi.new("unsigned char[?]", #enc)
    local len = C.EVP_DecodeBlock(buf, enc, #enc)
    if len < 32 then
      return nil
    end
    if enc:sub(-2) == "==" then
      len = len - 2
    elseif enc:sub(-1) == "=" then
      len = len - 1
    end
    local out = ffi.new("unsigned char[?]", len + 32)
    C.EVP_CIPHER_CTX_reset(ctx)
    C.EVP_DecryptInit_ex(ctx, cipher, nil, key, key) -- IV = the key's first 16 bytes
    C.EVP_CIPHER_CTX_set_padding(ctx, 0)
    C.EVP_DecryptUpdate(ctx, out, outl, buf, len)
    local total = outl[0]
    C.EVP_DecryptFinal_ex(ctx, out + total, outl)
    total = total + outl[0]
    if total < 20 then
      return nil
    end
    local n = out[16] * 16777216 + out[17] * 65536 + out[18] * 256 + out[19]
    if n > total - 20 then
      return nil
    end
    return ffi.string(out + 20, n)
  end
end

-- CLOCK_MONOTONIC in ms, through the C library (the struct's name is ours alone).
local now_ms
do
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } gbench_timespec;
    int clock_gettime(int clk_id, gbench_timespec *tp);
  ]])
  local ts = ffi.new("gbench_timespec")
  local CLOCK_MONOTONIC = ffi.os == "OSX" and 6 or 1
  now_ms = function()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
end

function init(args)
  mode, route, outdir = args[2], args[3], args[5]
  cycle = args[7] == "1"
  local rate = tonumber(args[8] or "0") or 0
  if rate > 0 then
    interval_ms = 1000 * tonumber(args[6]) / rate
  end
  stats = { sent = 0, sent_final = 0, responses = 0, ok = 0, non2xx = 0, unexpected = 0,
            misaddressed = 0, orphans = 0, chains = 0, chains_done = 0, chains_failed = 0,
            filler_sent = 0, filler_responses = 0, exhausted = 0 }
  load_data(args[1], tid, tonumber(args[6]))
  stats.chains = #chains
  if args[4] ~= "-" then
    decrypt = aes_decryptor(args[4])
  end
end

local function note(kind, user, step, status, body)
  notes = notes + 1
  if notes > 30 then
    return
  end
  evidence = evidence or assert(io.open(outdir .. "/evidence-" .. tid .. ".txt", "w"))
  evidence:write(string.format("--- %s user=%s step=%s status=%s\n%s\n", kind, tostring(user),
    tostring(step), tostring(status), (body or ""):sub(1, 1500)))
  evidence:flush()
end

local function next_chain()
  if cont_head <= cont_tail then
    local c = cont[cont_head]
    cont[cont_head] = nil
    cont_head = cont_head + 1
    return c
  end
  if fresh > #chains and cycle and #chains > 0 then
    fresh = 1
  end
  if fresh <= #chains then
    local c = chains[fresh]
    fresh = fresh + 1
    if cycle then
      c.next = 1
    end
    return c
  end
  return nil
end

-- wrk calls request() once on thread 0 before the run, only to check that it
-- parses as HTTP: that call gets the filler, so that no chain loses a step.
local verified = false

-- A connection with nothing to send waits a little instead of spinning on the filler.
-- Paced, a connection with something to send takes the next slot of the thread's
-- schedule and waits until it comes (wrk calls delay() before each request()).
function delay()
  if not cycle and cont_head > cont_tail and fresh > #chains then
    return 20
  end
  if interval_ms == 0 then
    return 0
  end
  local now = now_ms()
  if next_slot_ms == nil or next_slot_ms < now - BEHIND_MS then
    next_slot_ms = now
  else
    next_slot_ms = next_slot_ms + interval_ms
  end
  local wait = next_slot_ms - now
  return wait > 0 and math.floor(wait + 0.5) or 0
end

function request()
  if tid == 0 and not verified then
    verified = true
    return filler
  end
  local c = next_chain()
  if c == nil then
    stats.exhausted = 1
    filler_inflight = filler_inflight + 1
    add("filler_sent")
    return filler
  end
  local step = c.next
  c.next = step + 1
  local entry = { chain = c, step = step }
  if route == "to" then
    local list = by_user[c.user]
    if list == nil then
      list = { head = 1, tail = 0 }
      by_user[c.user] = list
    end
    list.tail = list.tail + 1
    list[list.tail] = entry
  end
  fifo_tail = fifo_tail + 1
  fifo[fifo_tail] = entry
  inflight = inflight + 1
  add("sent")
  if step == #c.reqs then
    add("sent_final")
  end
  return c.reqs[step]
end

local function pop_user(user)
  local list = by_user[user]
  if list == nil then
    return nil
  end
  while list.head <= list.tail do
    local e = list[list.head]
    list[list.head] = nil
    list.head = list.head + 1
    if not e.done then
      return e
    end
  end
  return nil
end

local function pop_fifo()
  while fifo_head <= fifo_tail do
    local e = fifo[fifo_head]
    fifo[fifo_head] = nil
    fifo_head = fifo_head + 1
    if not e.done then
      return e
    end
  end
  return nil
end

local function check_drained()
  if not drained_said and not cycle and inflight == 0 and cont_head > cont_tail
      and fresh > #chains then
    drained_said = true
    io.write("@@drained\n")
    io.stdout:flush()
  end
end

local TO = "<ToUserName><!%[CDATA%[(.-)%]%]></ToUserName>"

function response(status, headers, body)
  if filler_inflight > 0 and body == "ok\n" then
    filler_inflight = filler_inflight - 1
    add("filler_responses")
    check_drained()
    return
  end
  add("responses")
  if stats.responses % 500 == 0 then
    io.write("@@tick\n") -- progress, for the harness's stall watch
    io.stdout:flush()
  end
  local inner = body
  if decrypt then
    inner = decrypt(body) or body
  end
  local to = inner:match(TO)
  local e = nil
  if route == "to" then
    e = to and pop_user(to)
    if e == nil then
      add("misaddressed")
      note("misaddressed", to, nil, status, inner)
    end
  end
  e = e or pop_fifo()
  if e == nil then
    add("orphans")
    return
  end
  e.done = true
  inflight = inflight - 1
  local c, step = e.chain, e.step
  local ok = status >= 200 and status < 300
  if not ok then
    add("non2xx")
    add("status." .. status)
    note("status " .. status, c.user, step, status, inner)
  elseif mode == "bot" then
    local expect = c.expects[step]
    if expect ~= "" and not inner:find(expect, 1, true) then
      ok = false
      add("unexpected")
      note("unexpected (wanted " .. expect .. ")", c.user, step, status, inner)
    end
  end
  local pattern = c.captures[step]
  if ok and pattern ~= "" then
    captures = captures or assert(io.open(outdir .. "/captures-" .. tid .. ".tsv", "w"))
    captures:write(c.user, "\t", tostring(inner:match(pattern)), "\n")
    captures:flush()
  end
  if ok then
    add("ok")
    if step == #c.reqs then
      add("chains_done")
    else
      cont_tail = cont_tail + 1
      cont[cont_tail] = c
    end
  else
    add("chains_failed")
    if step < #c.reqs then
      c.next = #c.reqs + 1 -- a broken chain sends nothing more
    end
  end
  check_drained()
end

-- main state ------------------------------------------------------------------

local function json_value(v)
  if type(v) == "number" then
    return string.format("%.17g", v)
  end
  return string.format("%q", tostring(v))
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("stats") or {}
    for k, v in pairs(s) do
      total[k] = (total[k] or 0) + v
    end
  end
  local e = summary.errors
  local parts = {
    '"duration_us":' .. json_value(summary.duration),
    '"requests":' .. json_value(summary.requests),
    '"bytes":' .. json_value(summary.bytes),
    '"errors":{"connect":' .. e.connect .. ',"read":' .. e.read .. ',"write":' .. e.write
      .. ',"status":' .. e.status .. ',"timeout":' .. e.timeout .. '}',
    '"latency_us":{"p50":' .. latency:percentile(50) .. ',"p90":' .. latency:percentile(90)
      .. ',"p99":' .. latency:percentile(99) .. ',"max":' .. latency.max
      .. ',"mean":' .. json_value(latency.mean) .. '}',
  }
  local counts = {}
  for k, v in pairs(total) do
    counts[#counts + 1] = json_value(k) .. ":" .. json_value(v)
  end
  parts[#parts + 1] = '"script":{' .. table.concat(counts, ",") .. "}"
  io.write("@@summary {" .. table.concat(parts, ",") .. "}\n")
end
