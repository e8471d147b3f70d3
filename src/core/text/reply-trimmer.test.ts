// Tests for the reply trimmer: the discourse quotes corpus (shared/corpus/quotes) and the main patterns per language.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_TRIM_INPUT_CHARS, MAX_TRIM_LINES, previewText, trimReply } from './reply-trimmer.js';

const CORPUS = join(import.meta.dirname, '../../../../shared/corpus/quotes');
/** The exact-match rate reached on the corpus when this was written (64/64); it must not drop. */
const MIN_EXACT_RATE = 1;

/** "Thanks!" + blank line + marker + quoted history, the most common reply layout. */
const reply = (newText: string, marker: string): string =>
  `${newText}\n\n${marker}\n\n> Old message, line one.\n> Old message, line two.\n`;

describe('trimReply on the quotes corpus (fails, never skips, when ../shared/corpus is missing)', () => {
  it('matches the expected trimmed text', () => {
    const names = readdirSync(join(CORPUS, 'emails'))
      .filter((name) => existsSync(join(CORPUS, 'trimmed', name)))
      .sort();
    expect(names.length).toBeGreaterThan(0);
    const failing: string[] = [];
    for (const name of names) {
      const input = readFileSync(join(CORPUS, 'emails', name), 'utf8');
      const expected = readFileSync(join(CORPUS, 'trimmed', name), 'utf8');
      if (trimReply(input).trimEnd() !== expected.trimEnd()) failing.push(name);
    }
    const exact = names.length - failing.length;
    console.log(`quotes: ${exact}/${names.length} exact${failing.length ? ` (failing: ${failing.join(', ')})` : ''}`);
    expect(exact / names.length).toBeGreaterThanOrEqual(MIN_EXACT_RATE);
  });
});

describe('trimReply: quoted history', () => {
  it('cuts English reply headers, single-line and wrapped', () => {
    expect(trimReply(reply('Thanks!', 'On Mon, Jun 5, 2017 at 12:22 PM, John Doe <john@example.com> wrote:'))).toBe('Thanks!');
    expect(trimReply(reply('Thanks!', 'On Mon, Jun 5, 2017 at 12:22 PM, John Doe <\njohn@example.com> wrote:'))).toBe('Thanks!');
    expect(trimReply(reply('Thanks!', 'On 5 Jun 2017, at 12:22, John Doe wrote:'))).toBe('Thanks!');
    expect(trimReply(reply('Thanks!', 'John Doe <john@example.com> wrote:'))).toBe('Thanks!');
  });

  it('cuts history that is not quoted with ">" once a marker introduces it', () => {
    const text = 'Thanks!\n\nOn Mon, Jun 5, 2017 at 12:22 PM, John <john@example.com> wrote:\n\nOld text\nmore old text';
    expect(trimReply(text)).toBe('Thanks!');
  });

  it('keeps a reply written below the quote, and inline answers between quotes', () => {
    expect(trimReply('> On Mon, Jun 5, 2017, John <j@example.com> wrote:\n> Question?\n\nMy answer.')).toBe('My answer.');
    const inline = 'Hi,\n\nOn Mon, Jun 5, 2017 at 12:22 PM, John <j@example.com> wrote:\n> Q1?\n\nA1\n\n> Q2?\n\nA2';
    expect(trimReply(inline)).toBe('Hi,\n\n> Q1?\n\nA1\n\n> Q2?\n\nA2');
  });

  it('cuts Outlook header blocks and "Original Message" separators', () => {
    const block = 'From: John <j@example.com>\nSent: Monday, June 5, 2017 12:22 PM\nTo: Me\nSubject: RE: hi\n\nold text';
    expect(trimReply(`Thanks!\n\n${block}`)).toBe('Thanks!');
    expect(trimReply(`Thanks!\n\n-----Original Message-----\n${block}`)).toBe('Thanks!');
    expect(trimReply(`Thanks!\n________________________________\n${block}`)).toBe('Thanks!');
    const bold = '*From:* John [mailto:j@example.com]\n*Sent:* Monday\n*To:* Me\n*Subject:* hi\n\nold';
    expect(trimReply(`Reply\n\n${bold}`)).toBe('Reply');
  });

  it('keeps only the forwarded body of a bare forward', () => {
    const fwd =
      '---------- Forwarded message ---------\nFrom: John <j@example.com>\nDate: Mon, Jun 5, 2017 at 12:22 PM\n' +
      'Subject: a subject that\nwraps\nTo: <me@example.com>\n\n\nThe forwarded body.';
    expect(trimReply(fwd)).toBe('The forwarded body.');
    expect(trimReply('FYI\n\n---------- Forwarded message ---------\nFrom: a <a@example.com>\nDate: x\nSubject: y\nTo: z\n\nbody')).toBe('FYI');
  });

  it('cuts French reply headers', () => {
    expect(trimReply(reply('Merci !', 'Le lun. 5 juin 2017 à 12:22, Jean <jean@example.fr> a\u00a0écrit\u00a0:'))).toBe('Merci !');
    expect(trimReply(reply('Merci !', 'Le 4 janv. 2016 19:03, "Jean Dupont"\n<jean@example.fr>\na écrit :'))).toBe('Merci !');
    const outlook = 'De : Jean [mailto:jean@example.fr]\nEnvoyé : lundi 5 juin 2017 12:22\nÀ : Moi\nObjet : RE: test\n\nancien';
    expect(trimReply(`Merci !\n\n${outlook}`)).toBe('Merci !');
    expect(trimReply(`Merci !\n\n-------- Message d'origine --------\n${outlook}`)).toBe('Merci !');
  });

  it('cuts German reply headers', () => {
    expect(trimReply(reply('Danke!', 'Am Mo., 5. Juni 2017 um 12:22 Uhr schrieb Hans <hans@example.de>:'))).toBe('Danke!');
    expect(trimReply(reply('Danke!', 'Am 05.06.2017 um 12:22 schrieb Hans Müller:'))).toBe('Danke!');
    expect(trimReply(reply('Danke!', 'Hans <hans@example.de> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:'))).toBe('Danke!');
    const outlook = 'Von: Hans <h@example.de>\nGesendet: Montag, 5. Juni 2017 12:22\nAn: Ich\nBetreff: AW: Test\n\nalt';
    expect(trimReply(`Danke!\n\n-----Ursprüngliche Nachricht-----\n${outlook}`)).toBe('Danke!');
    expect(trimReply(`Danke!\n\n${outlook}`)).toBe('Danke!');
  });

  it('cuts Spanish reply headers', () => {
    expect(trimReply(reply('¡Gracias!', 'El lun., 5 jun. 2017 a las 12:22, Juan (<juan@example.es>) escribió:'))).toBe('¡Gracias!');
    expect(trimReply(reply('¡Gracias!', 'El jueves, 21 de noviembre de 2013, Juan escribió:'))).toBe('¡Gracias!');
    const outlook = 'De: Juan <j@example.es>\nEnviado: lunes, 5 de junio de 2017 12:22\nPara: Yo\nAsunto: RE: prueba\n\nviejo';
    expect(trimReply(`¡Gracias!\n\n-----Mensaje original-----\n${outlook}`)).toBe('¡Gracias!');
  });

  it('cuts Japanese reply headers', () => {
    const thanks = 'ありがとうございます。';
    expect(trimReply(reply(thanks, '2017年6月5日(月) 12:22 山田太郎 <taro@example.jp>:'))).toBe(thanks);
    expect(trimReply(reply(thanks, '2017/06/05 12:22、山田太郎 <taro@example.jp>のメール：'))).toBe(thanks);
    const outlook = '差出人: 山田太郎 <taro@example.jp>\n送信日時: 2017年6月5日 12:22\n宛先: 私\n件名: RE: テスト\n\n古い本文';
    expect(trimReply(`${thanks}\n\n${outlook}`)).toBe(thanks);
    expect(trimReply(`${thanks}\n\niPhoneから送信`)).toBe(thanks);
  });

  it('cuts other languages of the corpus', () => {
    expect(trimReply(reply('Спасибо', 'пн, 5 июн. 2017 г. в 12:22, Иван <ivan@example.ru>:'))).toBe('Спасибо');
    expect(trimReply(reply('Dzięki', 'pon., 5 cze 2017 o 12:22 Jan <jan@example.pl> napisał(a):'))).toBe('Dzięki');
    expect(trimReply(reply('Tack', 'Den mån 5 juni 2017 kl 12:22 skrev Sven <sven@example.se>:'))).toBe('Tack');
    expect(trimReply(reply('Bedankt', 'Op ma 5 jun. 2017 om 12:22 schreef Jan <jan@example.nl>:'))).toBe('Bedankt');
    expect(trimReply(reply('Grazie', 'Il giorno lun 5 giu 2017 alle ore 12:22 Mario <mario@example.it> ha scritto:'))).toBe('Grazie');
    expect(trimReply(reply('Obrigado', 'Em seg., 5 de jun. de 2017 às 12:22, João <joao@example.br> escreveu:'))).toBe('Obrigado');
    expect(trimReply(reply('谢谢', 'Li <li@example.cn> 于2017年6月5日周一 下午12:22写道：'))).toBe('谢谢');
    expect(trimReply(reply('감사합니다', '2017년 6월 5일 (월) 오후 12:22, Kim <kim@example.kr>님이 작성:'))).toBe('감사합니다');
  });

  it('returns "" when nothing but quoted history is left', () => {
    expect(trimReply('> On Thu, Apr 30, 2020 at 10:07 AM, "someone" <someone@example.com> wrote:\n>\n')).toBe('');
    expect(trimReply('')).toBe('');
    expect(trimReply(' \n\n\t\n')).toBe('');
  });

  it('keeps a message that is only a quote', () => {
    expect(trimReply('> a\n> b\n> c')).toBe('> a\n> b\n> c');
  });
});

describe('trimReply: signatures and delimiters', () => {
  it('cuts at a signature separator', () => {
    expect(trimReply('Hi\n\n-- \nJohn Doe\nACME Inc.')).toBe('Hi');
    expect(trimReply('Hi\n\n__________\nJohn Doe')).toBe('Hi');
  });

  it('removes mobile signatures in several languages', () => {
    for (const sig of [
      'Sent from my iPhone',
      'Envoyé de mon iPhone',
      'Von meinem iPhone gesendet',
      'Enviado desde mi iPhone',
      'Inviato da iPhone',
      'Verzonden met BlackBerry Work',
      'Get Outlook for Android',
      'iPhoneから送信',
    ]) {
      expect(trimReply(`Thanks a lot\n\n${sig}`)).toBe('Thanks a lot');
      expect(trimReply(`Thanks a lot\n\n${sig}\n\nOn Mon, Jun 5, 2017 at 12:22 PM, John <j@example.com> wrote:\n> old`)).toBe(
        'Thanks a lot',
      );
    }
  });
});

describe('trimReply: text that must not be cut', () => {
  it('keeps "On Monday I wrote to you…" in a paragraph', () => {
    const text =
      'Hello,\n\nOn Monday I wrote to you about my order #1234 and\nnobody has answered yet. On 5 June 2017 I wrote again.\n\nRegards,\nAnna';
    expect(trimReply(text)).toBe(text);
    const following = 'Hello,\n\nOn 5 June 2017 the technician wrote the following:\n\nthe device is broken\n\nAnna';
    expect(trimReply(following)).toBe(following);
  });

  it('keeps a "From:" line in a pasted log', () => {
    const text = 'The server log says:\n\nFrom: 10.0.0.1 port 22\nConnection closed\nTo: nowhere\n\nPlease help.';
    expect(trimReply(text)).toBe(text);
    const booking = 'My booking:\nFrom: Berlin\nTo: Munich\nDate: 5 June 2017\n\nPlease change it.';
    expect(trimReply(booking)).toBe(booking);
  });

  it('keeps "--" used as a dash, and dashes inside a sentence', () => {
    const text = 'I tried everything -- nothing works.\n-- and then it broke again.\nThis is not a ---------- delimiter.\n\nThanks';
    expect(trimReply(text)).toBe(text);
  });

  it('keeps timestamped log lines and "Sent from" in prose', () => {
    const log = 'Errors:\n2016-03-03 17:21:05 ERROR failed to deliver\n2016-03-03 17:21:06 INFO retry\n\nThanks';
    expect(trimReply(log)).toBe(log);
    const prose = 'Sent from my office yesterday, the parcel never arrived.\nPlease check.';
    expect(trimReply(prose)).toBe(prose);
  });

  it('keeps code blocks whole', () => {
    const text = 'Here is my config:\n\n```\n--\n> not a quote\nFrom: x\n```\n\nWhat is wrong?';
    expect(trimReply(text)).toBe(text);
  });
});

describe('trimReply: whitespace and bounds', () => {
  it('drops leading blank lines and trailing whitespace, keeps indentation and inner blank lines', () => {
    expect(trimReply('\n\n   \n    indented code\n\n\nnext\n\n  \n')).toBe('    indented code\n\n\nnext');
  });

  it('normalizes CRLF and CR line endings', () => {
    expect(trimReply('a\r\nb\rc\r\n')).toBe('a\nb\nc');
  });

  it('bounds the work on huge input', () => {
    const huge = 'x'.repeat(MAX_TRIM_INPUT_CHARS + 10);
    expect(trimReply(huge)).toHaveLength(MAX_TRIM_INPUT_CHARS);
    const many = Array.from({ length: MAX_TRIM_LINES + 5 }, (_, i) => `line ${i}`).join('\n');
    expect(trimReply(many).split('\n')).toHaveLength(MAX_TRIM_LINES);
    const t0 = Date.now();
    trimReply(Array.from({ length: 5000 }, () => 'On Mon, Feb 1, 2016 at 4:58 AM <a@b.co> text').join('\n'));
    trimReply(Array.from({ length: 2500 }, () => `On 2016 ${'a'.repeat(180)}@${'b'.repeat(180)}`).join('\n'));
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

describe('previewText', () => {
  it('collapses the trimmed text onto one line', () => {
    const text = 'Hello   there,\n\nthe  parcel\tis late.\n\nOn Mon, Jun 5, 2017 at 12:22 PM, John <j@example.com> wrote:\n> old';
    expect(previewText(text)).toBe('Hello there, the parcel is late.');
  });

  it('cuts to maxChars with an ellipsis, never splitting a character', () => {
    expect(previewText('abcdefghij', 5)).toBe('abcd…');
    expect(previewText('abcde', 5)).toBe('abcde');
    expect(previewText('😀😀😀😀😀😀', 4)).toBe('😀😀😀…');
    expect(previewText('abc', 0)).toBe('');
    expect(previewText('👍')).toBe('👍');
    expect(Array.from(previewText('word '.repeat(100))).length).toBeLessThanOrEqual(200);
  });
});
