-- Turns a page of docs/ into a man page (used by scripts/build-man with pandoc's man writer).
-- The page's own "# title" line names it for a reader of the repository; the man page's title
-- comes from .TH instead, so that heading is dropped. Every other heading moves up one level
-- ("## Options" becomes the section OPTIONS, "### ..." a subsection), and section names are
-- upper-cased as man(7) expects.
local seen_title = false

local function upper(inlines)
  return pandoc.walk_inline(pandoc.Span(inlines), {
    Str = function(s) return pandoc.Str(pandoc.text.upper(s.text)) end,
    Code = function(c) return pandoc.Str(pandoc.text.upper(c.text)) end,
  }).content
end

function Header(h)
  if h.level == 1 and not seen_title then
    seen_title = true
    return {}
  end
  h.level = math.max(h.level - 1, 1)
  if h.level == 1 then h.content = upper(h.content) end
  return h
end

-- A relative link (another page of docs/, a file of the repository) means nothing in a man page:
-- keep its text, drop the target. Absolute URLs stay, pandoc prints them after the text.
function Link(l)
  if not l.target:match("^%a[%w+.-]*:") then return l.content end
  return l
end

-- Pictures are for the web page only.
function Image(_) return {} end

-- A table of docs/ (flags, keys, exit codes) becomes a tagged paragraph per row, as man pages
-- list options: narrow tbl columns of prose render badly in a terminal and make groff warn.
-- The first cell is the tag; the other cells follow, each after its column's name, the last
-- column (what the row means) without one.
local function cell_blocks(cell) return cell.contents end

function Table(t)
  local headers = {}
  for _, row in ipairs(t.head.rows) do
    for i, cell in ipairs(row.cells) do headers[i] = pandoc.utils.stringify(cell.contents) end
  end
  local items = {}
  for _, body in ipairs(t.bodies) do
    for _, row in ipairs(body.body) do
      local term = pandoc.utils.blocks_to_inlines(cell_blocks(row.cells[1]))
      local details = {}
      local n = #row.cells
      for i = 2, n do
        local inlines = pandoc.utils.blocks_to_inlines(cell_blocks(row.cells[i]))
        if #inlines > 0 then
          if i < n and headers[i] and headers[i] ~= "" then
            local shown = { pandoc.Emph({ pandoc.Str(headers[i] .. ":") }), pandoc.Space() }
            for _, x in ipairs(inlines) do table.insert(shown, x) end
            inlines = shown
          end
          table.insert(details, pandoc.Para(inlines))
        end
      end
      table.insert(items, { term, { details } })
    end
  end
  return pandoc.DefinitionList(items)
end
