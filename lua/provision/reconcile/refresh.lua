-- Reading the current state of every system, all systems at once through
-- one engine run (reconcile/runner.lua): each listing page by page (the
-- next page's call is handed out when the previous page has answered),
-- records one by one when a plan covers only some keys (or a system has no
-- listing), and the lookups a resource declares.
--
--   refresh.run(systems, opts) -> states | nil, err
--   systems[i] = { name =, client =, resource =, context =, keys = list or nil,
--                  lookups = {name = true} (the lookups to read) }
--   states[name] = { mode = "list"|"read"|"none", observed = {norm key -> record},
--                    count =, duplicates = {key...}, lookups = {name -> value} }
local errors = require("provision.errors")
local paginate = require("provision.paginate")
local template = require("provision.reconcile.template")
local runner = require("provision.reconcile.runner")

local refresh = {}

local dig = template.dig

function refresh.norm(resource, key)
  if type(key) ~= "string" then return nil end
  if resource.key.case == "exact" then return key end
  return key:lower()
end

local function same_text(a, b, case)
  if type(a) == "string" and type(b) == "string" and case ~= "exact" then return a:lower() == b:lower() end
  return a == b
end

-- Whether an error answer means "no such record" (read.absent = {status, message}).
local function is_absent(spec, err)
  if not spec or type(err) ~= "table" then return false end
  if err.status ~= spec.status then return false end
  return spec.message == nil or (type(err.message) == "string" and err.message:find(spec.message, 1, true) ~= nil)
end
refresh.is_absent = is_absent

local function env_for(s, key, found)
  return {
    key = key, found = found, context = s.context,
    desired = function() return nil end,
    lookup = function() return nil end,
    merged = function() return nil end,
  }
end

local function call_of(s, spec, key, found)
  local args, n = template.args(spec.args, env_for(s, key, found))
  return { spec.operation, args = args, n = n }
end

local function fail_read(state, s, what, err)
  if not state.error then
    state.error = errors.new({ kind = type(err) == "table" and err.kind or "error", class = "RefreshError",
      operation = "reconcile.refresh", status = type(err) == "table" and err.status or nil,
      message = ("reading %s (%s): %s"):format(s.name, what, tostring(err)), cause = err })
  end
end

local function add_record(state, s, record)
  local key = refresh.norm(s.resource, dig(record, s.resource.key.field))
  if not key then return end
  if state.observed[key] then
    state.duplicates[#state.duplicates + 1] = key
    return
  end
  state.observed[key] = record
  state.count = state.count + 1
end

---------------------------------------------------------------- tasks

-- A paged list, one page in flight: on_items(items) for each page, then
-- on_end() once the last one came (not after a failure).
local function pager(s, spec, state, on_items, on_end)
  local entry = s.client.ops[spec.operation]
  local paging = entry.op.paging
  local base = call_of(s, spec)
  local np = #entry.positional
  local cursor = paging and paginate.cursor(paging, base.args[np + 1])
  local waiting, finished = false, false
  return {
    client = s.client, name = s.name .. " " .. spec.operation,
    next = function()
      if finished or state.error then return nil end
      if waiting then return false end
      waiting = true
      local args = {}
      for i = 1, np do args[i] = base.args[i] end
      if cursor then
        local o = {}
        for k, v in pairs(cursor.opts) do o[k] = v end
        args[np + 1] = o
      else
        args[np + 1] = base.args[np + 1]
      end
      return { spec.operation, args = args, n = np + 1 }
    end,
    done = function(_, _, value, info)
      waiting = false
      if value == nil then
        finished = true
        fail_read(state, s, spec.operation, info)
        return
      end
      local items
      if cursor then
        items = cursor:advance(value)
        finished = cursor.finished
        if cursor.stuck then
          fail_read(state, s, spec.operation, errors.new({ kind = "api",
            class = "PagingError", message = cursor.stuck, operation = spec.operation }))
          return
        end
      else
        items = spec.items and dig(value, spec.items) or value
        finished = true
      end
      on_items(type(items) == "table" and items or {})
      if finished and on_end then on_end() end
    end,
  }
end

-- One read per key (read = {operation, args, items?, present?, absent?, then_read?}).
local function reader(s, keys, state)
  local spec = s.resource.read
  local queue, i = {}, 0
  for _, k in ipairs(keys) do queue[#queue + 1] = { key = k } end
  local found_queue, inflight = {}, 0
  return {
    client = s.client, name = s.name .. " read",
    next = function()
      if state.error then return nil end
      local item = table.remove(found_queue)
      if item then
        local c = call_of(s, spec.then_read, item.key, item.found)
        c.item, c.second = item, true
        inflight = inflight + 1
        return c
      end
      if i >= #queue then
        -- a first answer may still ask for a second read
        if inflight > 0 then return false end
        return nil
      end
      i = i + 1
      item = queue[i]
      local c = call_of(s, spec, item.key)
      c.item = item
      inflight = inflight + 1
      return c
    end,
    done = function(_, call, value, info)
      inflight = inflight - 1
      local item = call.item
      if value == nil then
        if is_absent(spec.absent, info) then return end
        return fail_read(state, s, call[1], info)
      end
      if call.second then return add_record(state, s, value) end
      if spec.present then
        if dig(value, spec.present) ~= true then return end
        if spec.then_read then
          item.found = value
          found_queue[#found_queue + 1] = item
          return
        end
        return add_record(state, s, value)
      end
      local items = spec.items and dig(value, spec.items) or value
      if spec.items then
        for _, rec in ipairs(type(items) == "table" and items or {}) do
          if same_text(dig(rec, s.resource.key.field), item.key, s.resource.key.case) then
            return add_record(state, s, rec)
          end
        end
        return
      end
      add_record(state, s, items)
    end,
  }
end

-- The value of a lookup from its items.
local function lookup_value(spec, items)
  if spec.prefer then   -- one value: the first preferred item's, else the first item's
    local first
    for _, it in ipairs(items) do
      local all = true
      for k, v in pairs(spec.prefer) do if not same_text(dig(it, k), v) then all = false end end
      local value = dig(it, spec.value)
      if value ~= nil then
        if all then return value end
        first = first or value
      end
    end
    return first
  end
  local map = {}
  for _, it in ipairs(items) do
    local all = true
    for k, v in pairs(spec.where or {}) do if dig(it, k) ~= v then all = false end end
    local key, value = dig(it, spec.key), dig(it, spec.value)
    if all and key ~= nil and value ~= nil then
      if spec.case == "insensitive" and type(key) == "string" then key = key:lower() end
      if map[key] == nil then map[key] = value end
    end
  end
  return map
end

---------------------------------------------------------------- run

function refresh.run(systems, opts)
  opts = opts or {}
  local states, tasks = {}, {}
  for _, s in ipairs(systems) do
    local res = s.resource
    local state = { observed = {}, count = 0, duplicates = {}, lookups = {}, mode = "none" }
    states[s.name] = state
    local list = res.list
    if s.keys == nil and list and s.client.ops[list.operation] then
      state.mode = "list"
      local records = {}
      state.records = records
      tasks[#tasks + 1] = pager(s, list, state, function(items)
        for _, rec in ipairs(items) do
          records[#records + 1] = rec
          add_record(state, s, rec)
        end
      end)
    elseif res.read and s.client.ops[res.read.operation] then
      state.mode = "read"
      -- no listing on this server (the older Outpost generation): each key
      -- is read, and nothing beyond the roster can be seen
      state.unlisted = s.keys == nil
      tasks[#tasks + 1] = reader(s, s.keys or s.all_keys or {}, state)
    end
    for name in pairs(s.lookups or {}) do
      local spec = res.lookups[name]
      local from_list = spec.from == "list"
      local source = from_list and list or spec
      if not (from_list and state.mode == "list") and source and s.client.ops[source.operation] then
        local items = {}
        tasks[#tasks + 1] = pager(s, source, state, function(page)
          for _, it in ipairs(page) do items[#items + 1] = it end
        end, function() state.lookups[name] = lookup_value(spec, items) end)
      end
    end
  end
  local ok, err = pcall(runner.run, tasks, opts)
  if not ok then return nil, errors.new({ kind = "internal", message = tostring(err) }) end
  for _, s in ipairs(systems) do
    local state = states[s.name]
    if state.error then return nil, state.error end
    for name in pairs(s.lookups or {}) do
      local spec = s.resource.lookups[name]
      if spec.from == "list" and state.records then state.lookups[name] = lookup_value(spec, state.records) end
    end
  end
  return states
end

return refresh
