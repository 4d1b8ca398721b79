"""The explorer in a real browser: headless Chromium (Debian's chromium and
chromium-driver) through Selenium loads the page from a running qkv serve,
types a sentence, waits for the translation and the heatmaps and checks the
DOM: the token labels are the model's tokens, each panel has n_q x n_k cells,
hovering a cell highlights its row and column. Screenshots go to out/browser/.
Run by scripts/browser-test (which starts the server); prints 'ok NAME' or
'FAIL NAME: why' lines, as the C tests do."""
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base = sys.argv[1]
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
failures = 0


def check(name, cond, why):
    global failures
    if cond:
        print(f"ok   browser/{name}")
    else:
        failures += 1
        print(f"FAIL browser/{name}: {why}")


def api(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
d = webdriver.Chrome(options=opts, service=service)
try:
    d.set_window_size(1280, 800)
    d.get(base + "/")
    wait = WebDriverWait(d, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    box = d.find_element(By.ID, "text")
    box.clear()
    sentence = "I love you"
    box.send_keys(sentence)
    d.find_element(By.ID, "go").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmaps .cell"))
    want = api("/v1/attention", {"q": sentence})
    check("translation", d.find_element(By.ID, "translation").text == want["translation"],
          f"page shows {d.find_element(By.ID, 'translation').text!r}, the server {want['translation']!r}")
    rows = d.find_elements(By.CSS_SELECTOR, "#nbest tbody tr")
    check("nbest", len(rows) >= 2, f"{len(rows)} n-best rows")
    # cross-attention is shown first: panels = layers x (heads + mean)
    c = want["cross"]
    panels = d.find_elements(By.CSS_SELECTOR, "#heatmaps .panel")
    check("panels", len(panels) == c["layers"] * (c["heads"] + 1), f"{len(panels)} panels, layers {c['layers']} heads {c['heads']}")
    cells = panels[0].find_elements(By.CSS_SELECTOR, ".cell")
    check("cells", len(cells) == c["queries"] * c["keys"], f"{len(cells)} cells, expected {c['queries']} x {c['keys']}")
    cols = [e.get_attribute("title") for e in panels[0].find_elements(By.CSS_SELECTOR, ".lab.col")]
    check("source-tokens", cols == want["src_tokens"], f"column labels {cols} != {want['src_tokens']}")
    d.save_screenshot(os.path.join(out, "explorer-1280x800.png"))
    before = len(d.find_elements(By.CSS_SELECTOR, "#heatmaps .hl"))
    ActionChains(d).move_to_element(cells[1]).perform()
    hl = d.find_elements(By.CSS_SELECTOR, "#heatmaps .cell.hl")
    check("hover-highlight", before == 0 and len(hl) > 0,
          f"{before} highlighted before hover, {len(hl)} cells after")
    d.save_screenshot(os.path.join(out, "explorer-hover.png"))
    lines = d.find_elements(By.CSS_SELECTOR, "#headview line")
    check("headview", len(lines) > 0, "the head view draws no line")
    step = d.find_element(By.ID, "step").text
    wait.until(lambda d: "agrees with the model" in d.find_element(By.ID, "step").text)
    check("step", "softmax" in d.find_element(By.ID, "step").text, f"step panel: {step[:200]!r}")
    # the second example, with the head finder
    d.find_element(By.CSS_SELECTOR, ".example[data-query]").click()
    wait.until(lambda d: d.find_element(By.ID, "text").get_attribute("value").startswith("The chicken")
               and not d.find_element(By.ID, "finder-box").get_attribute("hidden"))
    check("finder", len(d.find_elements(By.CSS_SELECTOR, "#finder tbody tr")) > 0, "no head-finder rows")
    d.save_screenshot(os.path.join(out, "explorer-chicken.png"))
    d.execute_script("document.getElementById('attention').scrollIntoView()")
    d.save_screenshot(os.path.join(out, "explorer-heatmaps.png"))
    # a failing request is shown: an unknown model
    d.execute_script("var o=document.createElement('option');o.value='nope';o.text='nope';"
                     "document.getElementById('model').appendChild(o);document.getElementById('model').value='nope';")
    d.find_element(By.ID, "go").click()
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    check("error-shown", "404" in d.find_element(By.ID, "error").text, d.find_element(By.ID, "error").text)
    # narrow screen
    d.set_window_size(420, 800)
    d.execute_script("document.getElementById('model').value='en-zh';")
    d.find_element(By.ID, "go").click()
    wait.until(lambda d: not d.find_element(By.ID, "error").is_displayed())
    wide = d.execute_script("return document.documentElement.scrollWidth")
    check("narrow", wide <= 440, f"page is {wide}px wide in a 420px window")
    d.save_screenshot(os.path.join(out, "explorer-narrow.png"))
finally:
    d.quit()
sys.exit(1 if failures else 0)
