#!/usr/bin/env python3
"""Fixtures for qkv's BLEU and chrF: sacreBLEU 2.x's own numbers.

Run from the repository root:

    /usr/bin/python3 -m venv --system-site-packages .venv-eval
    .venv-eval/bin/pip install sacrebleu
    .venv-eval/bin/python scripts/golden/sacrebleu.py

Writes tests/golden/eval/sacrebleu.json with
  tokenize: [{text, tok, lc, out}]      BLEU preprocessing (lowercase, rstrip, tokenizer)
  corpora:  {name: {hyps, refs}}       refs are streams (refs[k][i]), null
                                        where sentence i lacks reference k
  bleu:     [{name, opts, score, counts, totals, precisions, bp, ratio,
              sys_len, ref_len, line, signature}]
  chrf:     [{name, opts, score, stats, line, signature}]
A case named "CORPUS/..." scores corpus CORPUS; "CORPUS/sentI" scores its
sentence I alone against the references it has (sacreBLEU's sentence_score
is corpus_score over one segment). Random corpora come from a seeded
random.Random, so the file is reproducible.
"""
import json
import os
import random
import sys

# this file is itself named sacrebleu.py: keep its folder off the import path
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import sacrebleu  # noqa: E402
from sacrebleu.metrics import BLEU, CHRF  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "eval", "sacrebleu.json")

EN_HYP = [
    "The cat sat on the mat.",
    "He said: \"It's 3.14, not 3,15!\" and left.",
    "Visit https://example.com/a-b?x=1&y=2 for more info.",
    "State-of-the-art results (2019-2020) were reported.",
    "I paid $1,000.50 -- twice -- in 2021.",
    "&quot;Quoted&quot; text &amp; entities &lt;tag&gt; here.",
    "Tabs\tand  double  spaces   here.  ",
    "",
    "e-mail me at john.doe@mail.org, please...",
    "Well... it's 5-6 o'clock; isn't it?",
]
EN_REF = [
    "The cat sat on the mat.",
    "He said: \"It is 3.14, not 3,15!\" and went away.",
    "See https://example.com/a-b?x=1&y=2 for more information.",
    "State-of-the-art results (2019-2021) were reported last year.",
    "I paid $1,000.50 - twice - in 2021.",
    "\"Quoted\" text & entities <tag> here.",
    "Tabs and double spaces here.",
    "Nothing was said.",
    "Email me at john.doe@mail.org, please.",
    "Well, it's 5-6 o'clock, isn't it?",
]
EN_REF2 = [
    "A cat was sitting on the mat.",
    "\"It's 3.14, not 3,15!\" he said, and left.",
    "Visit https://example.com/a-b?x=1&y=2 to learn more.",
    "Results that are state-of-the-art (2019-2020) were reported.",
    "Twice I paid $1,000.50 in 2021.",
    "\"Quoted\" text and entities <tag> here.",
    "Tabs and double spaces are here.",
    "",
    "Write to john.doe@mail.org, please.",
    "Well... isn't it 5-6 o'clock?",
]

ZH_HYP = [
    "我们在2023年训练了一个Transformer模型。",
    "他说：“这是GPT-4，不是GPT-3.5！”",
    "价格是１２３元（含税），约合$17.5。",
    "北京　上海，广州、深圳……",
    "English words 和中文 mixed together, 对吧?",
    "",
    "㐀丽𠀀 test ① ② → ←",
]
ZH_REF = [
    "我们在2023年训练了一个Transformer模型。",
    "他说：“这是GPT-4，而不是GPT-3.5！”",
    "价格为１２３元（含税），大约$17.5。",
    "北京、上海、广州和深圳……",
    "English words 与中文混在一起, 对吗?",
    "空的假设。",
    "㐀丽𠀀 test ① ② → ←",
]

SIGMA = [
    "ΟΔΥΣΣΕΥΣ ΚΑΙ ΣΟΦΙΑ, Σ.",
    "İstanbul'DA ÇOK GÜZEL; Straße STRASSE.",
    "MIXED Case AND Ünïcödé ÄÖÜ ǅ ǈ.",
]
SIGMA_REF = [
    "Οδυσσευς και σοφια, σ.",
    "istanbul'da çok güzel; straße strasse.",
    "mixed case and ünïcödé äöü ǆ ǉ.",
]

WORDS = ("the a cat dog sat ran on in mat house big small red blue it is was "
         "not and or but 3 42 1,000 3.14 2019 e-mail state-of-the-art U.S. "
         "Dr. x-ray café naïve über").split()
PUNCT = [".", ",", "!", "?", ";", ":", "-", "--", "\"", "'", "(", ")", "...", "&", "/", "%", "$"]
ZH_CHARS = list("我们他她是的了在有和不这个人中大为上们来到时地说要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨炮旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵侧坦")
ZH_PUNCT = list("，。！？、；：“”（）《》…—·　") + ["１２３", "ＡＢＣ", "GPT-4", "3.5", "2023年", "A.I."]


def rand_en(rng, n):
    out = []
    for _ in range(n):
        toks = []
        for _ in range(rng.randint(0, 18)):
            toks.append(rng.choice(WORDS) if rng.random() < 0.8 else rng.choice(PUNCT))
        s = ""
        for t in toks:
            s += ("" if rng.random() < 0.15 else " ") + t
        out.append(s.strip() if rng.random() < 0.9 else s)
    return out


def rand_zh(rng, n):
    out = []
    for _ in range(n):
        s = ""
        for _ in range(rng.randint(0, 30)):
            r = rng.random()
            s += rng.choice(ZH_CHARS) if r < 0.75 else rng.choice(ZH_PUNCT) if r < 0.9 else " " + rng.choice(WORDS) + " "
        out.append(s)
    return out


def perturb(rng, sents, words):
    out = []
    for s in sents:
        toks = s.split(" ")
        toks = [t if rng.random() < 0.7 else rng.choice(words) for t in toks if rng.random() < 0.9]
        out.append(" ".join(toks))
    return out


def perturb_zh(rng, sents):
    out = []
    for s in sents:
        out.append("".join(c if rng.random() < 0.7 else rng.choice(ZH_CHARS) for c in s if rng.random() < 0.9))
    return out


def sent_corpus(hyps, refs, i):
    return [hyps[i]], [[r[i]] for r in refs if r[i] is not None]


def bleu_case(name, hyps, refs, **opts):
    b = BLEU(**opts)
    sc = b.corpus_score(hyps, refs)
    sig = b.get_signature().format()
    line = sc.format(signature="")
    return {
        "name": name,
        "opts": {k: v for k, v in opts.items()},
        "score": sc.score, "counts": [int(x) if float(x).is_integer() else x for x in sc.counts],
        "totals": [int(x) if float(x).is_integer() else x for x in sc.totals],
        "precisions": sc.precisions, "bp": sc.bp, "ratio": sc.ratio,
        "sys_len": sc.sys_len, "ref_len": sc.ref_len, "line": line, "signature": sig,
    }


def chrf_case(name, hyps, refs, **opts):
    c = CHRF(**opts)
    stats = c._extract_corpus_statistics(hyps, refs)
    total = [sum(s[i] for s in stats) for i in range(len(stats[0]))]
    sc = c.corpus_score(hyps, refs)
    return {"name": name, "opts": opts, "score": sc.score,
            "stats": total, "line": sc.format(signature=""), "signature": c.get_signature().format()}


def main():
    rng = random.Random(20240501)
    bleu, chrf, tok = [], [], []

    en_hyp_r = rand_en(rng, 60)
    en_ref_r = perturb(rng, en_hyp_r, WORDS)
    en_ref_r2 = perturb(rng, en_hyp_r, WORDS)
    zh_ref_r = rand_zh(rng, 60)
    zh_hyp_r = perturb_zh(rng, zh_ref_r)

    # random strings over a pool spanning Unicode's categories (letters with
    # case mappings, marks, digits of other scripts, punctuation, symbols,
    # spaces, CJK, astral characters): checks the generated tables
    pool = [chr(c) for c in list(range(0x20, 0x7F)) * 3] + [
        chr(c) for c in (0xA0, 0xA7, 0xAB, 0xB2, 0xB7, 0xBD, 0xBF, 0xD7, 0xDF, 0x130, 0x131, 0x1C5, 0x3A3, 0x345,
                         0x301, 0x387, 0x5BE, 0x60C, 0x660, 0x6D4, 0x966, 0x1680, 0x2002, 0x200B, 0x2010, 0x2019,
                         0x2028, 0x2030, 0x2044, 0x20AC, 0x2116, 0x2160, 0x2190, 0x2212, 0x2460, 0x25A0, 0x2603,
                         0x2764, 0x2E80, 0x3000, 0x3001, 0x3008, 0x3041, 0x30A2, 0x3105, 0x3231, 0x3300, 0x4E00,
                         0x9FA5, 0x9FBC, 0xA4D0, 0xAC00, 0xFE31, 0xFE50, 0xFF01, 0xFF10, 0xFF21, 0xFF41, 0xFF64,
                         0xFFE5, 0x1F600, 0x1D400, 0x10400, 0x1E900, 0x20000, 0x2F800)]
    pool += [chr(rng.randrange(0xA0, 0x3000)) for _ in range(300)]
    pool = [c for c in pool if not 0xD800 <= ord(c) < 0xE000]
    fuzz = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(220)]
    uni_hyp = fuzz[:60]
    uni_ref = ["".join(c if rng.random() < 0.8 else rng.choice(pool) for c in h) for h in uni_hyp]

    corpora = {
        "en": (EN_HYP, [EN_REF]),
        "en_2refs": (EN_HYP, [EN_REF, EN_REF2]),
        "en_varrefs": (EN_HYP, [EN_REF, [r if r else None for r in EN_REF2]]),
        "zh": (ZH_HYP, [ZH_REF]),
        "sigma": (SIGMA, [SIGMA_REF]),
        "en_random": (en_hyp_r, [en_ref_r, en_ref_r2]),
        "zh_random": (zh_hyp_r, [zh_ref_r]),
        "empty_hyps": (["", "", ""], [["a b c", "d e", ""]]),
        "short": (["the cat", "a dog sat", "x"], [["the cat sat", "a dog ran", "y"]]),
        "no_4gram": (["one two three four five"], [["one two three four six"]]),
        "no_match": (["alpha beta"], [["gamma delta"]]),
        "unicode_random": (uni_hyp, [uni_ref]),
    }
    for name, (hyps, refs) in corpora.items():
        zh = name.startswith("zh")
        for tk in (["zh", "13a", "char", "intl"] if zh else ["13a", "intl", "none", "char", "zh"]):
            for lc in (False, True):
                if name.endswith("random") and tk in ("char", "none") and lc:
                    continue
                bleu.append(bleu_case(f"{name}/{tk}/{'lc' if lc else 'mixed'}", hyps, refs, tokenize=tk, lowercase=lc))
        for sm in ("none", "floor", "add-k"):
            bleu.append(bleu_case(f"{name}/smooth-{sm}", hyps, refs, tokenize="zh" if zh else "13a", smooth_method=sm))
        bleu.append(bleu_case(f"{name}/order2-eff", hyps, refs, tokenize="zh" if zh else "13a",
                              max_ngram_order=2, effective_order=True))
        # sentence level (sentence_bleu defaults: effective order on)
        if not name.endswith("random"):
            for i, h in enumerate(hyps):
                bleu.append(bleu_case(f"{name}/sent{i}", *sent_corpus(hyps, refs, i),
                                      tokenize="zh" if zh else "13a", effective_order=True))
        for wo in (0, 2):
            for lc in (False, True):
                chrf.append(chrf_case(f"{name}/w{wo}/{'lc' if lc else 'mixed'}", hyps, refs, word_order=wo, lowercase=lc))
        chrf.append(chrf_case(f"{name}/eps", hyps, refs, eps_smoothing=True))
        chrf.append(chrf_case(f"{name}/space-b1", hyps, refs, whitespace=True, beta=1))
        if not name.endswith("random"):
            for i, h in enumerate(hyps):
                chrf.append(chrf_case(f"{name}/sent{i}", *sent_corpus(hyps, refs, i), word_order=2))

    # tokenization, string for string
    seen = set()
    texts = (EN_HYP + EN_REF + EN_REF2 + ZH_HYP + ZH_REF + SIGMA + en_hyp_r[:30] + zh_hyp_r[:30] + [
        "<skipped> a-\nb\nc", "x &amp;quot; y &lt;&gt;", "  lead and trail \u3000\u00a0 ", "1.2.3 a.b,c 4,5. 6-7 -8 a-",
        "\u2018quote\u2019 \u201cdouble\u201d \u2014 dash \u2026 \u00bd \u00b2 \u0663 \u20ac5 \u00a9", "a\u200bb\u2028c\u0085d\x1ce",
        "\uff21\uff22 \uff08\uff09 \u3001\u3002 \u4db5\u4db6 \u9fbb\u9fbc \U00020000 \u2f80\u2f81 \u2e7f\u2e80"])
    texts += fuzz
    for t in texts:
        for tk in ("13a", "zh", "intl", "char", "none"):
            for lc in (False, True):
                if (t, tk, lc) in seen:
                    continue
                seen.add((t, tk, lc))
                if t in fuzz and tk in ("char", "none") and not lc:
                    continue  # nothing to learn there beyond rstrip
                b = BLEU(tokenize=tk, lowercase=lc)
                tok.append({"text": t, "tok": tk, "lc": lc, "out": b._preprocess_segment(t)})

    doc = {"sacrebleu_version": sacrebleu.__version__, "python": sys.version.split()[0],
           "corpora": {k: {"hyps": h, "refs": r} for k, (h, r) in corpora.items()}, "tokenize": tok, "bleu": bleu, "chrf": chrf}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"{OUT}: {len(tok)} tokenizations, {len(bleu)} BLEU and {len(chrf)} chrF cases", file=sys.stderr)


main()
