-- Iterators over paged list operations, driven by the operation's `paging`
-- entry (docs/api-tables.md): cursor (Outpost), keyset on a field
-- (Agilicus, by email), offset (Document360 skip/take).
--
-- paginate.cursor(paging, opts) is the walk without the calls: c.opts are
-- the options of the next request, c:advance(result) returns that page's
-- items and moves c.opts on (c.finished once the walk is over). pages()
-- below drives it with blocking calls; the reconciler drives it through the
-- bulk engine, one page in flight per listing.
local errors = require("provision.errors")
local json = require("provision.json")

local paginate = {}

local function field(t, dotted)
  for part in dotted:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

local Cursor = {}
Cursor.__index = Cursor

-- opts: the caller's options table (copied; never modified).
function paginate.cursor(paging, opts)
  local c = setmetatable({ paging = paging, opts = copy(opts), finished = false }, Cursor)
  if paging.kind == "offset" then
    c.offset = c.opts[paging.skip] or 0
    c.page_size = c.opts[paging.take] or paging.page_size
    c.opts[paging.skip], c.opts[paging.take] = c.offset, c.page_size
  end
  c.limit = paging.limit and (c.opts[paging.limit.param] or paging.limit.default)
  return c
end

-- The items of one page's result; moves the options on to the next page.
function Cursor:advance(result)
  local paging, opts = self.paging, self.opts
  local items
  if paging.kind == "offset" then
    items = type(result) == "table" and result or {}
    -- a server that ignores skip answers the same page again and again:
    -- the walk would never end (c.stuck says so; the drivers fail on it)
    local mark = #items > 0 and json.encode({ items[1], items[#items] }, { sort_keys = true }) or nil
    if mark and mark == self.last_mark then
      self.finished = true
      self.stuck = ("the page at %s=%d holds the same items as the page before: the server ignores %s, "
        .. "so the listing would never end"):format(paging.skip, self.offset, paging.skip)
      return {}
    end
    self.last_mark = mark
    self.offset = self.offset + #items
    if #items < self.page_size then self.finished = true end
    opts[paging.skip] = self.offset
  elseif paging.kind == "keyset" then
    items = field(result, paging.items) or {}
    -- Pages stay in ascending order when walking backwards, so the next
    -- cursor is then the first item's key.
    local edge = items[opts.search_direction == "backwards" and 1 or #items]
    -- A short page ends the walk, measured against the limit the server
    -- says it applied (it may cap the one asked for).
    local applied = type(result) == "table" and tonumber(result[paging.limit and paging.limit.param or ""])
      or self.limit
    if #items == 0 or (applied and #items < applied) or type(edge) ~= "table" or edge[paging.key] == nil
       or edge[paging.key] == opts[paging.param] then   -- the cursor did not move
      self.finished = true
    else
      opts[paging.param] = edge[paging.key]
    end
  else -- cursor
    items = field(result, paging.items) or {}
    local cursor = field(result, paging.next.field)
    if type(cursor) ~= "string" or cursor == "" or #items == 0 or cursor == opts[paging.next.param] then
      self.finished = true
    else
      opts[paging.next.param] = cursor
    end
  end
  return items
end

-- client:pages(opname, [required...], [options]) -> iterator of (items, info);
-- on failure the iterator gives (false, err) once and stops.
function paginate.pages(client, opname, ...)
  local entry = client.ops[opname]
  local paging = entry and entry.op.paging
  if not paging then
    local err = entry and errors.invalid(client.class .. "." .. tostring(opname), "operation is not paged")
      or client:unknown_operation(opname)
    local done = false
    return function()
      if done then return nil end
      done = true
      return false, err
    end
  end
  local n = select("#", ...)
  local args = { ... }
  -- the options table follows the required and any positional optional ones
  local np = #entry.positional + require("provision.client").leading_count(entry, n, ...)
  local c = paginate.cursor(paging, args[np + 1])
  local failed = false

  return function()
    if failed or c.finished then return nil end
    args[np + 1] = copy(c.opts)
    local result, info = client:call(opname, (table.unpack or unpack)(args, 1, math.max(n, np + 1)))
    if result == nil then
      failed = true
      return false, info
    end
    local items = c:advance(result)
    if c.stuck then
      failed = true
      return false, errors.new({ kind = "api", class = "PagingError", message = c.stuck,
        operation = client.class .. "." .. tostring(opname), outcome = "not_applied" })
    end
    return items, info
  end
end

-- client:each(opname, ...) -> iterator of single items; (false, err) on failure.
function paginate.each(client, opname, ...)
  local next_page = paginate.pages(client, opname, ...)
  local items, i = nil, 0
  return function()
    while true do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      local page, err = next_page()
      if page == nil then return nil end
      if page == false then return false, err end
      items, i = page, 0
    end
  end
end

-- client:collect(opname, ...) -> list of every item, or nil, err.
function paginate.collect(client, opname, ...)
  local all = {}
  for page, err in paginate.pages(client, opname, ...) do
    if page == false then return nil, err end
    for _, item in ipairs(page) do all[#all + 1] = item end
  end
  return all
end

return paginate
